"""Replay: recorded transcripts through the same core the proxy uses, events out in order.

Each transcript is one codex process with one connection, so each gets its own analyzer;
``meta`` and ``stderr`` rows are skipped (stderr is never protocol).

The loop is the bulk path of a long replay, so it does per row only what it must: one decode
of the row (``raw`` arrives as text); for the notifications the tap only counts (most of a
session: deltas) the connection's pre-filter on that text, with no encoding and no wrapper
objects, counted in one addition at the end. Every other line goes to the tap as that text
(msgspec reads a str as its UTF-8 bytes: no encoding either; a str msgspec decoded holds no
lone surrogate, so it always has those bytes). The file is read in large blocks.
(msgspec's ``decode_lines`` over large blocks measured slower here: a block's rows outgrow
the CPU caches before they are used.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from ..core import Analyzer, AnyEvent, RuntimeInfo, Transport
from ..core.analyzer import AnalyzerStats
from ..core.facts import TRANSPORTS
from .transcript import DIRECTIONS, decode_row, row_bytes, scan_session_meta, short_reason

WarningSink = Callable[[str], None]

# Read a transcript 256 KiB at a time: the default 8 KiB costs a read(2) every ~20 rows, about
# a tenth of the time of a delta-heavy replay; larger blocks measured no faster.
READ_BUFFER_BYTES = 256 * 1024


def replay_transcript(
    path: Path,
    *,
    transport: Transport | None,
    host_runtime: RuntimeInfo,
    warn: WarningSink,
    stats_out: list[AnalyzerStats] | None = None,
) -> Iterator[AnyEvent]:
    with path.open("rb", buffering=READ_BUFFER_BYTES) as stream:
        yield from replay_stream(stream, str(path), transport=transport,
                                 host_runtime=host_runtime, warn=warn, stats_out=stats_out)


def replay_stream(
    stream: BinaryIO,
    name: str,
    *,
    transport: Transport | None,
    host_runtime: RuntimeInfo,
    warn: WarningSink,
    stats_out: list[AnalyzerStats] | None = None,
) -> Iterator[AnyEvent]:
    """Replay a transcript read once from ``stream`` (a file or a pipe such as stdin); ``name``
    is what warnings call it. The first lines, read to find the session's meta, are replayed
    from memory, then the rest from the stream."""
    meta, head = scan_session_meta(stream)
    chosen: Transport = "stdio"
    if transport is not None:
        chosen = transport
    else:  # the transport a recording names, when it names a known one
        chosen = next((t for t in TRANSPORTS if t == meta.transport), "stdio")
    analyzer = Analyzer(host_runtime)
    connection = analyzer.open(chosen, 0)
    observer = analyzer.observer(connection)
    ignorable = observer.text_filter()
    ignored = 0  # lines the tap would only count, counted into its stats at the end
    tap_line = analyzer.tap_line
    decode = decode_row
    base = meta.time_base
    now = base
    for line_number, text in enumerate(chain(head, stream), 1):
        try:
            row = decode(text)
        except (ValueError, RecursionError) as error:
            if text.strip():
                warn(f"{name}:{line_number}: corrupt transcript row skipped "
                     f"({short_reason(str(error))})")
            continue
        direction = row.dir
        if direction != "s2c" and direction != "c2s":
            if direction not in DIRECTIONS:
                warn(f"{name}:{line_number}: corrupt transcript row skipped "
                     f"(unknown dir {direction!r})")
            continue  # meta and stderr rows: stderr is never protocol
        raw = row.raw
        if type(raw) is str:
            now = base + row.t
            if ignorable(raw):  # a notification nothing is derived from
                ignored += 1
                continue
            line: bytes | str = raw  # tapped as its UTF-8 bytes, not encoded first
        else:
            try:
                line = row_bytes(row)
            except ValueError as error:
                warn(f"{name}:{line_number}: corrupt transcript row skipped ({error})")
                continue
            now = base + row.t
        # c2s or s2c, tested above (mypy does not narrow a str by comparison)
        events = tap_line(connection, direction, line, now)  # type: ignore[arg-type]
        if events:
            yield from events
    observer.count_ignored(ignored)
    yield from analyzer.finish(now)
    if stats_out is not None:
        stats_out.append(analyzer.stats())
