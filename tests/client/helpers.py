"""Helpers for the client tests: an in-memory delivery, a fabricated codex home, wire inputs."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Sequence
from pathlib import Path

import msgspec

from codex_rpc_analytics.core.envelope import Envelope
from codex_rpc_analytics.delivery import FlushResult
from tests.support import wire_lines

# Fabricated credentials: long and distinctive so a leak is easy to spot in any output.
ACCESS_TOKEN = "eyJhbGciOiJub25lIn0.Y2xpZW50LXRlc3RzLWFjY2Vzcy10b2tlbg.c2ln"
ACCOUNT_ID = "0a1b2c3d-0000-4000-8000-0000000c11e7"


def _b64(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def write_chatgpt_auth(codex_home: Path) -> Path:
    """A CODEX_HOME logged in with ChatGPT (fabricated tokens), as the HTTP sink needs."""
    codex_home.mkdir(parents=True, exist_ok=True)
    claims = {"iss": "https://auth.invalid", "email": "dev@example.invalid"}
    doc = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": f"{_b64({'alg': 'none'})}.{_b64(claims)}.c2ln",
            "access_token": ACCESS_TOKEN,
            "refresh_token": "fake-refresh-token",
            "account_id": ACCOUNT_ID,
        },
        "last_refresh": "2026-11-25T11:40:00Z",
    }
    (codex_home / "auth.json").write_text(json.dumps(doc))
    return codex_home


class ListDelivery:
    """An in-memory :class:`EventDelivery`; ``gate`` (when set) makes ``submit`` wait."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []
        self.gate: threading.Event | None = None
        self.closed = False
        self.flushes = 0

    def submit(self, events: Sequence[tuple[str, bytes]]) -> None:
        if self.gate is not None:
            self.gate.wait()
        self.events.extend(events)

    def flush(self, timeout: float) -> FlushResult:
        self.flushes += 1
        return FlushResult(complete=True, uncommitted=0, sinks={})

    async def flush_async(self, timeout: float) -> FlushResult:
        return self.flush(timeout)

    def close(self, timeout: float) -> FlushResult:
        self.closed = True
        return self.flush(timeout)

    def payloads(self, event_type: str | None = None) -> list[bytes]:
        return [p for t, p in self.events if event_type is None or t == event_type]


class WireExchange(msgspec.Struct):
    """A client request of a recorded session and the raw members a host would hold."""

    method: str
    params: bytes
    result: bytes


def recorded_exchanges(name: str) -> list[WireExchange]:
    """Every answered client request of a transcript, in answer order, as raw JSON."""
    decoder = msgspec.json.Decoder(Envelope)
    requests: dict[object, tuple[str, bytes]] = {}
    exchanges = []
    for direction, line in wire_lines(name):
        envelope = decoder.decode(line)
        if direction == "c2s" and envelope.method is not None and envelope.id is not None:
            raw = envelope.params
            requests[envelope.id] = (envelope.method,
                                     bytes(raw) if raw is not msgspec.UNSET else b"{}")
        elif direction == "s2c" and envelope.method is None and envelope.id in requests:
            method, params = requests.pop(envelope.id)
            if envelope.result is not msgspec.UNSET:
                exchanges.append(WireExchange(method, params, bytes(envelope.result)))
    return exchanges
