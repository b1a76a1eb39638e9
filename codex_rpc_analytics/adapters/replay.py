"""Replay: recorded transcripts through the same core the proxy uses, events out in order.

Each transcript is one codex process with one connection, so each gets its own analyzer;
``meta`` and ``stderr`` rows are skipped (stderr is never protocol).

The loop is the bulk path of a long replay, so it does per row only what it must: one decode
of the row (``raw`` arrives as text), then one decode of a line that starts as a notification
(the pre-filter's probe, on that text: no encoding, no wrapper objects). A notification the
tap only counts (most of a session: deltas) is counted in one addition at the end; one the tap
reads goes to it with the probe's method and params (``Tap.notification``), not decoded again.
Every other line goes to the tap as that text (msgspec reads a str as its UTF-8 bytes; a str
msgspec decoded holds no lone surrogate, so it always has those bytes), and the reducer is
called only for the facts it returns. The file is read in large blocks. (msgspec's
``decode_lines`` over large blocks measured slower here: a block's rows outgrow the CPU caches
before they are used.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import BinaryIO

from msgspec import UNSET

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
    probe_text, read_methods = observer.text_filter()
    notification = observer.tap.notification
    ignored = 0  # lines the tap would only count, counted into its stats at the end
    observe = observer.tap.observe  # the tap straight, the reducer only when there are facts
    reduce = analyzer.reduce
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
            probe = probe_text(raw)
            if probe is not None and probe.id is UNSET and probe.method is not None:
                method = probe.method  # a notification (prefilter.NotificationProbe)
                if method not in read_methods:  # nothing is derived from it
                    ignored += 1
                    continue
                # c2s or s2c, tested above (mypy does not narrow a str by comparison)
                facts = notification(direction, method, probe.params, now)  # type: ignore[arg-type]
            else:  # tapped as its UTF-8 bytes, not encoded first
                facts = observe(direction, raw, now)  # type: ignore[arg-type]
        else:
            try:
                line = row_bytes(row)
            except ValueError as error:
                warn(f"{name}:{line_number}: corrupt transcript row skipped ({error})")
                continue
            now = base + row.t
            facts = observe(direction, line, now)  # type: ignore[arg-type]
        if facts:  # most lines yield none
            yield from reduce(facts)
    observer.count_ignored(ignored)
    yield from analyzer.finish(now)
    if stats_out is not None:
        stats_out.append(analyzer.stats())
