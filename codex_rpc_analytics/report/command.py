"""``codex-rpc-analytics report``: the dashboard as one HTML file, from the local outbox or a
collector's store.

A plain function returning an exit status, like ``stats`` and ``events``: a store that cannot
be read gives a one-line error and exit status 1; the page is written to a temporary file in
the target's directory and renamed over it, so a reader never sees half a report.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from ..store import StoreError
from .build import build_report, close_lanes, open_lanes
from .scope import Scope

_ERROR = "codex-rpc-analytics: error:"  # the CLI's convention; the report sits below the CLI


def report_command(state_dir: Path, scope: Scope, output: str, *, store: str | None = None,
                   out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Write the report for ``scope`` to ``output`` (``-``: standard output)."""

    async def run() -> str:
        lanes = await open_lanes(store, state_dir)
        try:
            return await build_report(lanes, scope)
        finally:
            await close_lanes(lanes)

    try:
        page = asyncio.run(run())
    except (StoreError, sqlite3.Error) as exc:
        print(f"{_ERROR} {exc}", file=err or sys.stderr)
        return 1
    if output == "-":
        (out or sys.stdout).write(page)
        return 0
    try:
        _write_atomically(Path(output), page)
    except OSError as exc:
        print(f"{_ERROR} cannot write {output}: {exc.strerror}", file=err or sys.stderr)
        return 1
    return 0


def _write_atomically(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent or ".",
                                     prefix=f".{path.name}.", suffix=".tmp",
                                     delete=False) as tmp:
        tmp.write(text)
    try:
        # The report names the team's clients, sources and models: private until its owner
        # chooses to share it (chmod).
        os.chmod(tmp.name, 0o600)
        os.replace(tmp.name, path)
    except BaseException:
        os.unlink(tmp.name)
        raise
