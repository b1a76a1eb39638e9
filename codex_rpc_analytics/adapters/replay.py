"""Replay: recorded transcripts through the same core the proxy uses, events out in order.

Each transcript is one codex process with one connection, so each gets its own analyzer;
``meta`` and ``stderr`` rows are skipped (stderr is never protocol).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ..core import Analyzer, AnyEvent, RuntimeInfo, Transport
from ..core.analyzer import AnalyzerStats
from ..core.facts import TRANSPORTS
from ..core.tap import Direction
from .transcript import CorruptRow, read_rows, row_bytes, session_meta

WarningSink = Callable[[str], None]

_WIRE_DIRECTIONS: dict[str, Direction] = {"c2s": "c2s", "s2c": "s2c"}


def replay_transcript(
    path: Path,
    *,
    transport: Transport | None,
    host_runtime: RuntimeInfo,
    warn: WarningSink,
    stats_out: list[AnalyzerStats] | None = None,
) -> Iterator[AnyEvent]:
    meta = session_meta(path)
    chosen: Transport = "stdio"
    if transport is not None:
        chosen = transport
    else:  # the transport a recording names, when it names a known one
        chosen = next((t for t in TRANSPORTS if t == meta.transport), "stdio")
    analyzer = Analyzer(host_runtime)
    connection = analyzer.open(chosen, 0)
    base = meta.time_base
    now = base
    feed_line = analyzer.feed_line
    with path.open("rb") as stream:
        for item in read_rows(stream):
            if type(item) is CorruptRow:
                warn(f"{path}:{item.line_number}: corrupt transcript row skipped ({item.reason})")
                continue
            line_number, row = item  # type: ignore[misc]
            direction = _WIRE_DIRECTIONS.get(row.dir)
            if direction is None:
                continue  # meta and stderr rows: stderr is never protocol
            raw = row.raw
            try:
                line = raw.encode() if type(raw) is str else row_bytes(row)
            except ValueError as error:
                warn(f"{path}:{line_number}: corrupt transcript row skipped ({error})")
                continue
            now = base + row.t
            events = feed_line(connection, direction, line, now)
            if events:
                yield from events
    yield from analyzer.finish(now)
    if stats_out is not None:
        stats_out.append(analyzer.stats())
