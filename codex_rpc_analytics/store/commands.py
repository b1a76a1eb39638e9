"""The ``stats`` and ``events`` commands, over any store: a local outbox or a collector's.

Plain functions returning an exit status: errors are one line on ``err`` (default stderr) and
exit status 1; output goes to ``out``. A local state directory where nothing was recorded yet
is not an error: ``stats`` says so, ``events`` prints nothing (exit 0). Both read through
:class:`~.base.EventStore`, so the output is the same wherever the events are; ``stats`` ends
with delivery per sink for an outbox and with events per source for a collector's store;
``stats --json`` prints the same figures as one JSON document (counts keyed by value, NULL as
``(none)``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..delivery.outbox import OUTBOX_FILENAME
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


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "-"


def _counts(rows: Sequence[Row]) -> dict[str, int]:
    """Rows of (value, count) as a dict in the rows' order; NULL is named ``(none)``."""
    return {name if name is not None else "(none)": int(n) for name, n in rows}


async def summary(store: EventStore) -> dict[str, Any]:
    """The ``stats`` figures, one query per figure, the same queries on every store; what
    ``stats --json`` prints."""
    q = store.fetch
    by_type = _counts(await q(f"SELECT event_type, COUNT(*) FROM events {_BY_COUNT}"))
    threads = (await q(f"SELECT COUNT(*), COUNT(DISTINCT thread_id) {_THREADS}"))[0]
    is_outbox = isinstance(store, OutboxView)
    figures: dict[str, Any] = {
        "kind": "outbox" if is_outbox else "store",
        "location": store.display,
        "events": {"total": sum(by_type.values()), "by_type": by_type},
        "threads": {
            "initialized": int(threads[0]),
            "distinct": int(threads[1]),
            "by_client": _counts(await q(f"SELECT client, COUNT(*) {_THREADS} {_BY_COUNT}")),
            "by_initialization_mode": _counts(
                await q(f"SELECT initialization_mode, COUNT(*) {_THREADS} {_BY_COUNT}")),
        },
        "turns": {
            "total": int((await q(f"SELECT COUNT(*) {_TURNS}"))[0][0]),
            "by_status": _counts(await q(f"SELECT status, COUNT(*) {_TURNS} {_BY_COUNT}")),
            "by_client": _counts(await q(f"SELECT client, COUNT(*) {_TURNS} {_BY_COUNT}")),
        },
    }
    if isinstance(store, OutboxView):
        figures["sinks"] = {
            key: {"delivered": c.delivered, "pending": c.pending, "rejected": c.rejected,
                  "dropped": c.dropped}
            for key, c in sorted(store.sink_counts().items())}
    else:
        figures["sources"] = _counts(
            await q(f"SELECT source, COUNT(*) FROM events {_BY_COUNT}"))
    return figures


def nothing_recorded(state_dir: Path) -> bool:
    """No outbox in ``state_dir`` yet: nothing was ever recorded there."""
    return not (state_dir / OUTBOX_FILENAME).is_file()


def empty_summary(state_dir: Path) -> dict[str, Any]:
    """The ``stats --json`` figures of an outbox where nothing was recorded yet: every count
    zero, in the shape :func:`summary` gives, so a script reads both the same way."""
    return {
        "kind": "outbox",
        "location": str(state_dir / OUTBOX_FILENAME),
        "events": {"total": 0, "by_type": {}},
        "threads": {"initialized": 0, "distinct": 0, "by_client": {},
                    "by_initialization_mode": {}},
        "turns": {"total": 0, "by_status": {}, "by_client": {}},
        "sinks": {},
    }


async def summary_lines(store: EventStore) -> list[str]:
    """The ``stats`` text."""
    f = await summary(store)
    threads, turns = f["threads"], f["turns"]
    lines = [
        f"{f['kind']}: {f['location']}",
        f"events: {f['events']['total']} ({_counts_line(f['events']['by_type'])})",
        f"threads initialized: {threads['initialized']} ({threads['distinct']} distinct "
        "threads)",
        f"  by client: {_counts_line(threads['by_client'])}",
        f"  by initialization_mode: {_counts_line(threads['by_initialization_mode'])}",
        f"turns: {turns['total']}",
        f"  by status: {_counts_line(turns['by_status'])}",
        f"  by client: {_counts_line(turns['by_client'])}",
    ]
    if "sinks" in f:
        lines.append("sinks:" if f["sinks"] else "sinks: none")
        lines += [f"  {key}: delivered {c['delivered']}, pending {c['pending']}, "
                  f"rejected {c['rejected']}"
                  + (f", dropped {c['dropped']}" if c["dropped"] else "")
                  for key, c in f["sinks"].items()]
    else:
        sources = f["sources"]
        lines.append(f"sources: {_counts_line(sources)}" if sources else "sources: none")
    return lines


def stats_command(
    state_dir: Path, out: TextIO, *, store: str | None = None, err: TextIO | None = None,
    as_json: bool = False,
) -> int:
    """A readable summary of a store (``store``, else the outbox in ``state_dir``); with
    ``as_json`` the same figures as one JSON document."""
    if store is None and nothing_recorded(state_dir):
        # Not an error: a fresh install. Opening the outbox would create it, so say so here.
        if as_json:
            out.write(json.dumps(empty_summary(state_dir), indent=2) + "\n")
        else:
            out.write(f"no events recorded yet in {state_dir}\n")
        return 0

    async def run() -> str:
        reader = await open_reader(store, state_dir)
        try:
            if as_json:
                return json.dumps(await summary(reader), indent=2)
            return "\n".join(await summary_lines(reader))
        finally:
            await reader.close()

    try:
        text = asyncio.run(run())
    except (StoreError, sqlite3.Error) as exc:
        print(f"{_ERROR} {exc}", file=err or sys.stderr)
        return 1
    out.write(text + "\n")
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
    if store is None and nothing_recorded(state_dir):
        return 0  # no events: no lines

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
