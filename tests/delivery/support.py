"""Helpers for the delivery tests: fabricated credentials and events, a loopback collector."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

# Fabricated credentials: long and distinctive so a leak is easy to spot in any output.
ACCESS_TOKEN = "eyJhbGciOiJub25lIn0.ZmFrZS1hY2Nlc3MtdG9rZW4tZm9yLXRlc3Rz.c2ln"
ACCOUNT_ID = "0a1b2c3d-0000-4000-8000-00000000beef"
API_KEY = "sk-fake-api-key-that-must-never-be-logged"
EVENTS_PATH = "/backend-api/codex/analytics-events/events"


def _b64(doc: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def write_chatgpt_auth(codex_home: Path, access_token: str = ACCESS_TOKEN) -> None:
    codex_home.mkdir(parents=True, exist_ok=True)
    header = _b64({"alg": "none", "typ": "JWT"})
    claims = {"iss": "https://auth.invalid", "email": "dev@example.invalid"}
    doc = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": f"{header}.{_b64(claims)}.c2ln",
            "access_token": access_token,
            "refresh_token": "fake-refresh-token",
            "account_id": ACCOUNT_ID,
        },
        "last_refresh": "2026-11-25T11:40:00Z",
    }
    (codex_home / "auth.json").write_text(json.dumps(doc))


def make_event(
    n: int,
    *,
    client: str = "probe",
    event_type: str = "codex_thread_initialized",
    mode: str = "new",
    status: str = "completed",
    pad: int = 0,
) -> tuple[str, bytes]:
    """A compact event shaped like codex's (key order kept; unicode kept unescaped)."""
    params: dict[str, object] = {
        "thread_id": f"thread-{n}",
        "app_server_client": {
            "product_client_id": client,
            "client_name": client,
            "client_version": "0.0.1",
            "rpc_transport": "stdio",
            "experimental_api_enabled": True,
        },
    }
    if event_type == "codex_turn_event":
        params["turn_id"] = f"turn-{n}"
        params["status"] = status
    else:
        params["initialization_mode"] = mode
    params["note"] = "é ü " + "x" * pad
    doc = {"event_type": event_type, "event_params": params}
    return event_type, json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def free_port() -> int:
    """A loopback port nothing listens on (until the test starts a server on it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    @property
    def ids(self) -> list[str]:
        return self.headers["X-Codex-Rpc-Analytics-Event-Ids"].split(",")


Reply = tuple[int, dict[str, str]]


@dataclass
class Collector:
    """A loopback analytics backend: records every request, answers from a script (then 200)."""

    script: list[Reply] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    on_request: Callable[[Received], None] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status, headers = self.script.pop(0) if self.script else (200, {})
        received = Received(request.path, dict(request.headers), body, status, time.monotonic())
        self.requests.append(received)
        if self.on_request is not None:
            self.on_request(received)
        return web.json_response({}, status=status, headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        return app

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.status == 200]

    def accepted_ids(self) -> list[str]:
        return [i for r in self.accepted for i in r.ids]


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def outbox_rows(state_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(state_dir / "outbox.sqlite3")
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()

