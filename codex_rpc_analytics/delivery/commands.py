"""The ``flush`` and ``requeue`` commands as plain functions returning an exit status
(``stats`` and ``events`` read through the store: ``store/commands.py``).

Errors are one line on ``err`` (default stderr) and exit status 1; output goes to ``out``.
A state directory where nothing was recorded yet is not an error: nothing is pending (exit 0).
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .outbox import OUTBOX_FILENAME, Outbox, OutboxError
from .pipeline import DEFAULT_LOGGER, Delivery
from .settings import BatchSettings, OutboxSettings, with_configured_tokens
from .sink_base import SinkSpec, SinkSpecError
from .sinks import parse_sink_spec

# The CLI's one-line message convention (cli/errors.py), repeated here: delivery sits below
# the CLI and must not import it.
_PROG = "codex-rpc-analytics"
# While another process holds pending rows, how often flush looks again.
_HELD_POLL_S = 0.2
# close() settles leases and closes sinks; it gets at least this long even past the deadline.
_CLOSE_MIN_S = 0.5
_ERROR = f"{_PROG}: error:"


def flush_command(
    state_dir: Path,
    sinks: Sequence[SinkSpec],
    codex_home: Path | None,
    timeout: float,
    *,
    configured: Sequence[SinkSpec] = (),
    batch: BatchSettings | None = None,
    outbox_settings: OutboxSettings | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    logger: logging.Logger | None = None,
) -> int:
    """Deliver what is pending. With no ``sinks``, every sink that has pending events.

    Sink keys are canonical sink specs, so the sinks of earlier runs can be rebuilt from the
    outbox alone; ``configured`` (the config file's sinks) gives a rebuilt sink its token.
    Returns 0 when nothing remains pending, 1 otherwise (with the count printed).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if not (state_dir / OUTBOX_FILENAME).is_file():
        print(f"nothing pending: no events recorded yet in {state_dir}", file=out)
        return 0
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
                # A warning like delivery's others: the CLI prefixes it and -q hides it.
                (logger or logging.getLogger(DEFAULT_LOGGER)).warning(
                    "skipping pending sink %r: %s", key, exc)
        if not specs:
            print("nothing pending", file=out)
            return 0
    specs = with_configured_tokens(specs, configured)
    batch = batch or BatchSettings()
    limits = outbox_settings or OutboxSettings()
    delivery = Delivery(state_dir=state_dir, sinks=specs, codex_home=codex_home, logger=logger,
                        batch_max_events=batch.max_events, batch_max_bytes=batch.max_bytes,
                        retention_days=limits.retention_days,
                        max_pending_events=limits.max_pending_events)
    delivery.start()
    deadline = time.monotonic() + timeout
    result = delivery.flush(timeout)
    told = False
    while not result.complete and (remaining := deadline - time.monotonic()) > 0:
        # Rows another running proxy is sending right now are its to settle: wait for it
        # (rows of a process that died are taken over at once by the flush itself).
        held = delivery.leased_elsewhere()
        if not held:
            break
        if not told:
            pids = ", ".join(str(pid) for pid in held if pid is not None) or "unknown"
            print(f"waiting up to {remaining:.0f} s for {sum(held.values())} events that "
                  f"another codex-rpc-analytics process (pid {pids}) is sending", file=err)
            told = True
        time.sleep(min(_HELD_POLL_S, remaining))
        result = delivery.flush(max(deadline - time.monotonic(), 0.1))
    result = delivery.close(max(deadline - time.monotonic(), _CLOSE_MIN_S))
    status = {s.key: s for s in delivery.status().sinks}
    left = 0
    for spec in specs:
        counts = result.sinks.get(spec.key)
        if counts is None:
            print(f"{spec.key}: outbox unavailable", file=out)
            left += 1
            continue
        left += counts.pending
        line = (
            f"{spec.key}: delivered {counts.delivered}, pending {counts.pending},"
            f" rejected {counts.rejected}"
            + (f", dropped {counts.dropped}" if counts.dropped else "")
        )
        sink_status = status.get(spec.key)
        if sink_status is not None and sink_status.disabled_reason:
            line += f" (disabled: {sink_status.disabled_reason})"
        print(line, file=out)
    if left or not result.complete:
        print(f"{left} events still pending", file=out)
        return 1
    return 0


def requeue_command(
    state_dir: Path,
    sinks: Sequence[SinkSpec],
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Put rejected (parked) events back to pending, for ``sinks`` (every sink when empty);
    the next proxy or ``flush`` sends them. Returns 0, or 1 when the outbox cannot be used."""
    out = out or sys.stdout
    err = err or sys.stderr
    if not (state_dir / OUTBOX_FILENAME).is_file():
        print(f"nothing rejected: no events recorded yet in {state_dir}", file=out)
        return 0
    try:
        outbox = Outbox.open(state_dir)
    except OutboxError as exc:
        print(f"{_ERROR} {exc}", file=err)
        return 1
    try:
        counts = outbox.requeue_rejected([s.key for s in sinks] if sinks else None)
    except sqlite3.Error as exc:
        print(f"{_ERROR} cannot update outbox {outbox.path}: {exc}", file=err)
        return 1
    finally:
        outbox.close()
    if not counts:
        print("nothing rejected", file=out)
        return 0
    for key, count in sorted(counts.items()):
        print(f"{key}: {count} events re-queued", file=out)
    print("they are sent by the next proxy, or now by `codex-rpc-analytics flush`", file=out)
    return 0
