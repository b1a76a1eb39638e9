"""The ``flush``, ``stats`` and ``events`` commands as plain functions returning an exit status.

Errors are one line on ``err`` (default stderr) and exit status 1; output goes to ``out``.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .outbox import OUTBOX_FILENAME, Outbox, OutboxError
from .pipeline import Delivery
from .sink_base import SinkSpec, SinkSpecError
from .sinks import parse_sink_spec

# The CLI's one-line message convention (cli/errors.py), repeated here: delivery sits below
# the CLI and must not import it.
_PROG = "codex-rpc-analytics"
_ERROR = f"{_PROG}: error:"


def flush_command(
    state_dir: Path,
    sinks: Sequence[SinkSpec],
    codex_home: Path | None,
    timeout: float,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    logger: logging.Logger | None = None,
) -> int:
    """Deliver what is pending. With no ``sinks``, every sink that has pending events.

    Sink keys are canonical sink specs, so the sinks of earlier runs can be rebuilt from the
    outbox alone. Returns 0 when nothing remains pending, 1 otherwise (with the count printed).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if not (state_dir / OUTBOX_FILENAME).is_file():
        print(f"{_ERROR} no outbox in {state_dir} (nothing recorded yet)", file=err)
        return 1
    specs = list(sinks)
    if not specs:
        try:
            outbox = Outbox.open_readonly(state_dir)
            try:
                keys = outbox.pending_sink_keys()
            finally:
                outbox.close()
        except (OutboxError, sqlite3.Error) as exc:
            print(f"{_ERROR} {exc}", file=err)
            return 1
        for key in keys:
            try:
                specs.append(parse_sink_spec(key))
            except SinkSpecError as exc:
                print(f"{_PROG}: warning: skipping pending sink {key!r}: {exc}", file=err)
        if not specs:
            print("nothing pending", file=out)
            return 0
    delivery = Delivery(state_dir=state_dir, sinks=specs, codex_home=codex_home, logger=logger)
    delivery.start()
    result = delivery.close(timeout)
    status = {s.key: s for s in delivery.status().sinks}
    remaining = 0
    for spec in specs:
        counts = result.sinks.get(spec.key)
        if counts is None:
            print(f"{spec.key}: outbox unavailable", file=out)
            remaining += 1
            continue
        remaining += counts.pending
        line = (
            f"{spec.key}: delivered {counts.delivered}, pending {counts.pending},"
            f" rejected {counts.rejected}"
        )
        sink_status = status.get(spec.key)
        if sink_status is not None and sink_status.disabled_reason:
            line += f" (disabled: {sink_status.disabled_reason})"
        print(line, file=out)
    if remaining or not result.complete:
        print(f"{remaining} events still pending", file=out)
        return 1
    return 0


def _counts_line(rows: Sequence[tuple[object, ...]]) -> str:
    return ", ".join(f"{name if name is not None else '(none)'} {n}" for name, n in rows) or "-"


def stats_command(state_dir: Path, out: TextIO, *, err: TextIO | None = None) -> int:
    """A readable summary of the outbox: threads, turns, and delivery per sink."""
    err = err or sys.stderr
    try:
        outbox = Outbox.open_readonly(state_dir)
    except OutboxError as exc:
        print(f"{_ERROR} {exc}", file=err)
        return 1
    try:
        q = outbox.query
        thread_filter = "FROM events WHERE event_type = 'codex_thread_initialized'"
        turn_filter = "FROM events WHERE event_type = 'codex_turn_event'"
        by_type = q("SELECT event_type, COUNT(*) FROM events GROUP BY 1 ORDER BY 2 DESC, 1")
        n_events = sum(n for _, n in by_type)
        threads = q(f"SELECT COUNT(*), COUNT(DISTINCT thread_id) {thread_filter}")[0]
        by_client = q(f"SELECT client, COUNT(*) {thread_filter} GROUP BY 1 ORDER BY 2 DESC, 1")
        by_mode = q(
            f"SELECT initialization_mode, COUNT(*) {thread_filter} GROUP BY 1 ORDER BY 2 DESC, 1"
        )
        turns = q(f"SELECT COUNT(*) {turn_filter}")[0][0]
        turns_by_status = q(f"SELECT status, COUNT(*) {turn_filter} GROUP BY 1 ORDER BY 2 DESC, 1")
        turns_by_client = q(f"SELECT client, COUNT(*) {turn_filter} GROUP BY 1 ORDER BY 2 DESC, 1")
        sinks = outbox.sink_counts()
    except sqlite3.Error as exc:
        print(f"{_ERROR} cannot read outbox {outbox.path}: {exc}", file=err)
        return 1
    finally:
        outbox.close()
    lines = [
        f"outbox: {outbox.path}",
        f"events: {n_events} ({_counts_line(by_type)})",
        f"threads initialized: {threads[0]} ({threads[1]} distinct threads)",
        f"  by client: {_counts_line(by_client)}",
        f"  by initialization_mode: {_counts_line(by_mode)}",
        f"turns: {turns}",
        f"  by status: {_counts_line(turns_by_status)}",
        f"  by client: {_counts_line(turns_by_client)}",
        "sinks:" if sinks else "sinks: none",
    ]
    lines += [
        f"  {key}: delivered {c.delivered}, pending {c.pending}, rejected {c.rejected}"
        for key, c in sorted(sinks.items())
    ]
    out.write("\n".join(lines) + "\n")
    return 0


def events_command(
    state_dir: Path,
    out: TextIO,
    types: list[str],
    since: float | None,
    *,
    err: TextIO | None = None,
) -> int:
    """Print stored payloads, one JSON line each, oldest first; filter by type and created-at."""
    err = err or sys.stderr
    try:
        outbox = Outbox.open_readonly(state_dir)
    except OutboxError as exc:
        print(f"{_ERROR} {exc}", file=err)
        return 1
    try:
        for payload in outbox.payloads(types, since):
            out.write(payload.decode("utf-8", "replace") + "\n")
    except sqlite3.Error as exc:
        print(f"{_ERROR} cannot read outbox {outbox.path}: {exc}", file=err)
        return 1
    finally:
        outbox.close()
    return 0
