"""The ``flush`` command as a plain function returning an exit status (``stats`` and ``events``
read through the store: ``store/commands.py``).

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
from .settings import BatchSettings, with_configured_tokens
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
    configured: Sequence[SinkSpec] = (),
    batch: BatchSettings | None = None,
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
    specs = with_configured_tokens(specs, configured)
    batch = batch or BatchSettings()
    delivery = Delivery(state_dir=state_dir, sinks=specs, codex_home=codex_home, logger=logger,
                        batch_max_events=batch.max_events, batch_max_bytes=batch.max_bytes)
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
