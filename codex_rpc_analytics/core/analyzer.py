"""The pure heart the adapters drive: bytes of any number of connections in, events out.

An ``Analyzer`` owns one reducer and, per connection, a pair of line framers (one per
direction) and a tap. Adapters hand it the bytes they relayed and the time they saw them.

Framing lives here only. An adapter that wants events for bytes calls :meth:`Analyzer.feed`;
one that must pace its work or see each line (the proxy session analyses a budget at a time
and records every line) calls :meth:`Analyzer.lines` to frame and :meth:`Analyzer.feed_line`
for each line it got back. Replay and websocket frames are whole lines already.

Before a line reaches its tap, the connection's ``NotificationFilter`` (prefilter.py) takes
out the notifications the tap would only count, counting them as the tap would: the same
events and stats for a fraction of the cost (``prefilter=False`` turns it off, for the test
that proves it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from .events import AnyEvent
from .facts import Fact, Transport
from .framing import LineFramer
from .prefilter import NotificationFilter, NotificationProbe
from .reducer import Reducer, ReducerStats
from .runtime import RuntimeInfo
from .tap import C2S, Direction, Tap, TapStats

# Called with each line an analyzer framed, before it is tapped: what a recorder needs.
LineCallback = Callable[[Direction, bytes, float], None]


def _never(_line: str) -> NotificationProbe | None:
    return None


class ConnectionObserver:
    """Frames both directions of one connection and taps each complete line."""

    __slots__ = ("_filter", "_framers", "tap")

    def __init__(self, tap: Tap, max_line_bytes: int | None, prefilter: bool = True) -> None:
        self.tap = tap
        self._framers = {
            "c2s": LineFramer(max_line_bytes, skim=True),
            "s2c": LineFramer(max_line_bytes, skim=True),
        }
        self._filter = NotificationFilter(tap.notification_methods) if prefilter else None

    def ignores(self, line: bytes) -> bool:
        """Whether ``line`` is a notification the tap would only count; if so it is counted
        here, as the tap would, and must not be handed to the tap."""
        line_filter = self._filter
        if line_filter is None or not line_filter.ignorable(line):
            return False
        stats = self.tap.stats
        stats.lines += 1
        stats.notifications += 1
        return True

    def text_filter(self) -> tuple[Callable[[str], NotificationProbe | None], frozenset[str]]:
        """For a driver that holds lines as text and counts what it skips itself (replay's
        bulk path, one call a line): ``NotificationFilter.probe_text`` and the methods the
        tap reads (no probes without the filter). A line whose probe has no ``id`` and a
        ``method`` outside them is one the tap would only count: the driver reports those
        with :meth:`count_ignored` and does not hand them to the tap. With a method inside
        them, it hands the probe's method and params to ``Tap.notification``."""
        line_filter = self._filter
        if line_filter is None:
            return _never, frozenset()
        return line_filter.probe_text, line_filter.read_methods

    def count_ignored(self, lines: int) -> None:
        stats = self.tap.stats
        stats.lines += lines
        stats.notifications += lines

    def lines(self, direction: Direction, data: bytes) -> list[bytes]:
        return self._framers[direction].feed(data)

    def resync(self, direction: Direction) -> None:
        self._framers[direction].resync()

    def final_lines(self) -> list[tuple[Direction, bytes]]:
        finals: list[tuple[Direction, bytes]] = []
        for direction in (C2S, "s2c"):
            line = self._framers[direction].finish()
            if line is not None:
                finals.append((direction, line))
        return finals

    @property
    def oversized_lines(self) -> int:
        return sum(framer.oversized_lines for framer in self._framers.values())

    @property
    def skimmed_lines(self) -> int:
        return sum(framer.skimmed_lines for framer in self._framers.values())


class AnalyzerStats(msgspec.Struct):
    connections: int
    tap: TapStats
    reducer: ReducerStats
    oversized_lines: int
    skimmed_lines: int = 0


class Analyzer:
    # Lines up to this size are assembled whole; a longer one (a thread/resume result with a
    # long history, a file in a string) is skimmed as it streams by into the skeleton analytics
    # reads (skim.py), so no line costs more than a few MiB of memory. The relay itself has no
    # limit and never changes a byte.
    DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024

    def __init__(
        self,
        host_runtime: RuntimeInfo,
        *,
        max_line_bytes: int | None = DEFAULT_MAX_LINE_BYTES,
        reducer: Reducer | None = None,
        prefilter: bool = True,
    ) -> None:
        self.reducer = reducer if reducer is not None else Reducer(host_runtime)
        self.max_line_bytes = max_line_bytes
        self.prefilter = prefilter
        self._observers: dict[int, ConnectionObserver] = {}
        self._closed_stats = TapStats()
        self._closed_oversized = 0
        self._closed_skimmed = 0
        self._next_connection_id = 0

    def open(self, transport: Transport, connection_id: int | None = None) -> int:
        if connection_id is None:
            connection_id = self._next_connection_id
        self._next_connection_id = max(self._next_connection_id, connection_id + 1)
        self._observers[connection_id] = ConnectionObserver(
            Tap(connection_id, transport), self.max_line_bytes, self.prefilter
        )
        return connection_id

    def observer(self, connection_id: int) -> ConnectionObserver:
        """A connection's framers and tap, for a driver that feeds it line by line (replay)."""
        return self._observers[connection_id]

    def feed(
        self,
        connection_id: int,
        direction: Direction,
        data: bytes,
        now: float,
        on_line: LineCallback | None = None,
    ) -> list[AnyEvent]:
        """Bytes as relayed (any chunking); complete lines are tapped (each handed to
        ``on_line`` first)."""
        observer = self._observers[connection_id]
        events: list[AnyEvent] = []
        for line in observer.lines(direction, data):
            if on_line is not None:
                on_line(direction, line, now)
            if not observer.ignores(line):
                self._tap_line(observer.tap, direction, line, now, events)
        return events

    def lines(self, connection_id: int, direction: Direction, data: bytes) -> list[bytes]:
        """Frame bytes as relayed (any chunking) into the complete lines they end, without
        tapping them: the caller hands each to :meth:`feed_line`, in order, when it likes."""
        return self._observers[connection_id].lines(direction, data)

    def resync(self, connection_id: int, direction: Direction) -> None:
        """Bytes of ``direction`` were lost (not analysed): drop the partial line, and what
        comes before the next newline, rather than glue them to the wrong bytes."""
        self._observers[connection_id].resync(direction)

    def feed_line(
        self, connection_id: int, direction: Direction, line: bytes, now: float
    ) -> list[AnyEvent]:
        """One whole message (replay, websocket frames)."""
        observer = self._observers[connection_id]
        if observer.ignores(line):
            return []
        return self.tap_line(connection_id, direction, line, now)

    def tap_line(
        self, connection_id: int, direction: Direction, line: bytes | str, now: float
    ) -> list[AnyEvent]:
        """:meth:`feed_line` without the connection's filter: straight to the tap. A line
        held as text is tapped as its UTF-8 bytes, without encoding it first."""
        facts = self._observers[connection_id].tap.observe(direction, line, now)
        if not facts:
            return []  # the common case, kept cheap: most lines yield no fact
        return self.reduce(facts)

    def reduce(self, facts: Sequence[Fact]) -> list[AnyEvent]:
        """The events of facts a connection's tap returned (a driver that calls the tap
        itself, replay, hands them here)."""
        events: list[AnyEvent] = []
        apply = self.reducer.apply
        for fact in facts:
            events.extend(apply(fact))
        return events

    def close(
        self, connection_id: int, now: float, on_line: LineCallback | None = None
    ) -> list[AnyEvent]:
        """The connection ended: its final unterminated lines count (unless resyncing), then it
        is closed."""
        observer = self._observers.pop(connection_id)
        events: list[AnyEvent] = []
        for direction, line in observer.final_lines():
            if on_line is not None:
                on_line(direction, line, now)
            if not observer.ignores(line):
                self._tap_line(observer.tap, direction, line, now, events)
        for fact in observer.tap.close(now):
            events.extend(self.reducer.apply(fact))
        self._absorb_stats(observer)
        return events

    def finish(self, now: float, on_line: LineCallback | None = None) -> list[AnyEvent]:
        """End of session: close every connection, then flush turns that never completed."""
        events: list[AnyEvent] = []
        for connection_id in list(self._observers):
            events.extend(self.close(connection_id, now, on_line))
        events.extend(self.reducer.flush_open_turns())
        return events

    def stats(self) -> AnalyzerStats:
        tap = msgspec.structs.replace(self._closed_stats)
        oversized = self._closed_oversized
        skimmed = self._closed_skimmed
        for observer in self._observers.values():
            _add_stats(tap, observer.tap.stats)
            oversized += observer.oversized_lines
            skimmed += observer.skimmed_lines
        return AnalyzerStats(
            connections=self._next_connection_id,
            tap=tap,
            reducer=msgspec.structs.replace(self.reducer.stats),
            oversized_lines=oversized,
            skimmed_lines=skimmed,
        )

    def _tap_line(
        self, tap: Tap, direction: Direction, line: bytes, now: float, events: list[AnyEvent]
    ) -> None:
        for fact in tap.observe(direction, line, now):
            events.extend(self.reducer.apply(fact))

    def _absorb_stats(self, observer: ConnectionObserver) -> None:
        _add_stats(self._closed_stats, observer.tap.stats)
        self._closed_oversized += observer.oversized_lines
        self._closed_skimmed += observer.skimmed_lines


def _add_stats(total: TapStats, part: TapStats) -> None:
    for field in TapStats.__struct_fields__:
        setattr(total, field, getattr(total, field) + getattr(part, field))
