"""The report's test data: a store holding every recorded session plus a generated month of a
team's traffic, and the same figures computed by independent SQL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from codex_rpc_analytics.report import Scope
from codex_rpc_analytics.store import EventStore, make_row, open_store
from tests.support import replayed_events
from tests.traffic import month_of_traffic

# The generated month ends here (2026-12-02 09:46 UTC); the recorded sessions are from
# 2026-11-25, inside it.
END_MS = 1_796_200_000_000
SCOPE = Scope(since_ms=END_MS - 31 * 86_400_000, until_ms=END_MS)
GENERATED = 8_000
HOSTILE_CLIENT = '<img src="x" onerror="console.error(1)">&amp;'


def store_rows() -> list[tuple[Any, ...]]:
    """Rows of every recorded session, a generated month, and one turn from a client whose
    name is HTML (a sender chooses its name: the page must show it as text)."""
    rows = [make_row("recorded", f"rec-{i}", event, END_MS - 7 * 86_400_000)
            for i, event in enumerate(replayed_events())]
    hostile = None
    for generated in month_of_traffic(GENERATED, END_MS - 3_600_000, seed=7):
        rows.append(make_row(generated.source, generated.event_id, generated.payload,
                             generated.received_at_ms))
        if hostile is None and generated.payload.startswith(b'{"event_type":"codex_turn_event"'):
            event = json.loads(generated.payload)
            event["event_params"]["app_server_client"]["product_client_id"] = HOSTILE_CLIENT
            hostile = json.dumps(event).encode()
    assert hostile is not None
    rows.append(make_row("web", "hostile-1", hostile, END_MS - 86_400_000))
    return rows


def fill_store(spec: str, rows: list[tuple[Any, ...]]) -> None:
    async def fill() -> None:
        store = await open_store(spec, migrate=True)
        try:
            for start in range(0, len(rows), 2000):
                await store.ingest(rows[start:start + 2000])
        finally:
            await store.close()

    asyncio.run(fill())


def empty_store(spec: str) -> None:
    fill_store(spec, [])


async def independent_figures(store: EventStore, scope: Scope) -> dict[str, int]:
    """Turns, failed turns and output tokens in the window, by plain SQL of their own."""
    rows = await store.fetch(
        "SELECT status, output_tokens FROM events WHERE event_type = 'codex_turn_event'"
        " AND occurred_at_ms >= $1 AND occurred_at_ms < $2", scope.since_ms, scope.until_ms)
    return {"turns": len(rows),
            "failed_turns": sum(1 for status, _ in rows if status == "failed"),
            "output_tokens": sum(tokens or 0 for _, tokens in rows)}


def sqlite_spec(directory: Path, name: str = "team.sqlite3") -> str:
    return str(directory / name)


class CollectProcess:
    """``codex-rpc-analytics collect`` as a child process on ``store``, serving the dashboard
    to the read tokens in ``state_dir``; ``url`` once it announced where it listens."""

    def __init__(self, store: str, state_dir: Path) -> None:
        env = {**os.environ, "CODEX_RPC_ANALYTICS_STATE_DIR": str(state_dir)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "codex_rpc_analytics", "collect", "--listen", "127.0.0.1:0",
             "--store", store], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        lines = []
        for line in self.proc.stderr:  # blocks until the announcement (or the exit)
            lines.append(line)
            if line.startswith("listening on "):
                break
        else:
            raise AssertionError(f"collect exited: {''.join(lines)}")
        self.announcement = line
        self.url = line.split()[2].rstrip("/")

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err
