"""The ``stats`` and ``events`` commands, over any store: a local outbox or a collector's.

Plain functions returning an exit status: errors are one line on ``err`` (default stderr) and
exit status 1; output goes to ``out``. Both read through :class:`~.base.EventStore`, so the
output is the same wherever the events are; ``stats`` ends with delivery per sink for an
outbox and with events per source for a collector's store.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .base import EventStore, Row, StoreError
from .open import open_reader
from .outbox_view import OutboxView

# The CLI's one-line message convention (cli/errors.py), repeated here: the store sits below
# the CLI and must not import it.
_ERROR = "codex-rpc-analytics: error:"

_THREADS = "FROM events WHERE event_type = 'codex_thread_initialized'"
_TURNS = "FROM events WHERE event_type = 'codex_turn_event'"
# NULLS FIRST: the two dialects sort NULL differently by default.
_BY_COUNT = "GROUP BY 1 ORDER BY 2 DESC, 1 NULLS FIRST"


def _counts_line(rows: Sequence[Row]) -> str:
    return ", ".join(f"{name if name is not None else '(none)'} {n}" for name, n in rows) or "-"


async def summary_lines(store: EventStore) -> list[str]:
    """The ``stats`` text, one query per figure, the same queries on every store."""
    q = store.fetch
    by_type = await q(f"SELECT event_type, COUNT(*) FROM events {_BY_COUNT}")
    threads = (await q(f"SELECT COUNT(*), COUNT(DISTINCT thread_id) {_THREADS}"))[0]
    by_client = await q(f"SELECT client, COUNT(*) {_THREADS} {_BY_COUNT}")
    by_mode = await q(f"SELECT initialization_mode, COUNT(*) {_THREADS} {_BY_COUNT}")
    turns = (await q(f"SELECT COUNT(*) {_TURNS}"))[0][0]
    turns_by_status = await q(f"SELECT status, COUNT(*) {_TURNS} {_BY_COUNT}")
    turns_by_client = await q(f"SELECT client, COUNT(*) {_TURNS} {_BY_COUNT}")
    kind = "outbox" if isinstance(store, OutboxView) else "store"
    lines = [
        f"{kind}: {store.display}",
        f"events: {sum(n for _, n in by_type)} ({_counts_line(by_type)})",
        f"threads initialized: {threads[0]} ({threads[1]} distinct threads)",
        f"  by client: {_counts_line(by_client)}",
        f"  by initialization_mode: {_counts_line(by_mode)}",
        f"turns: {turns}",
        f"  by status: {_counts_line(turns_by_status)}",
        f"  by client: {_counts_line(turns_by_client)}",
    ]
    if isinstance(store, OutboxView):
        sinks = store.sink_counts()
        lines.append("sinks:" if sinks else "sinks: none")
        lines += [
            f"  {key}: delivered {c.delivered}, pending {c.pending}, rejected {c.rejected}"
            + (f", dropped {c.dropped}" if c.dropped else "")
            for key, c in sorted(sinks.items())
        ]
    else:
        sources = await q(f"SELECT source, COUNT(*) FROM events {_BY_COUNT}")
        lines.append(f"sources: {_counts_line(sources)}" if sources else "sources: none")
    return lines


def stats_command(
    state_dir: Path, out: TextIO, *, store: str | None = None, err: TextIO | None = None
) -> int:
    """A readable summary of a store (``store``, else the outbox in ``state_dir``)."""

    async def run() -> list[str]:
        reader = await open_reader(store, state_dir)
        try:
            return await summary_lines(reader)
        finally:
            await reader.close()

    try:
        lines = asyncio.run(run())
    except (StoreError, sqlite3.Error) as exc:
        print(f"{_ERROR} {exc}", file=err or sys.stderr)
        return 1
    out.write("\n".join(lines) + "\n")
    return 0


def events_command(
    state_dir: Path,
    out: TextIO,
    types: list[str],
    since: float | None,
    *,
    store: str | None = None,
    err: TextIO | None = None,
) -> int:
    """Print stored events, one compact JSON line each, oldest first; filter by type and by
    the time they were stored (``since``, Unix seconds)."""

    async def run() -> None:
        reader = await open_reader(store, state_dir)
        try:
            since_ms = int(since * 1000) if since is not None else None
            async for payload in reader.payloads(types, since_ms):
                out.write(payload.decode("utf-8", "replace") + "\n")
        finally:
            await reader.close()

    try:
        asyncio.run(run())
    except (StoreError, sqlite3.Error) as exc:
        print(f"{_ERROR} {exc}", file=err or sys.stderr)
        return 1
    return 0
