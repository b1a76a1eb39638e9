"""The analytics side of a proxied connection: a step function, no thread of its own.

The relay hands over every chunk it relays with :meth:`TapSession.observe` (an append to a
deque, never a wait) and every ``rpcAnalytics/*`` line it cut out of the client's stream with
:meth:`TapSession.extension_request`. Whoever drives the relay calls :meth:`TapSession.process`
when it has nothing to relay: the session frames the queued chunks into lines, taps them,
hands the events to delivery (``submit`` never blocks), writes the recording and answers the
extension requests, in relay order (so a status reflects every byte relayed before it), and
gives control back after about ``budget`` seconds. The stdio proxy calls it from its poll loop
(relay_loop.py), the in-process transport from its asyncio loop; both are single-threaded, so
nothing here locks.

The backlog between relay and analysis is bounded in bytes (``max_backlog_bytes``, 64 MiB by
default). Past a sixteenth of it (``FLOOD_FRACTION``) the session is *flooded*: each new chunk
is framed right away and
the notifications the tap never reads (deltas and the like, by their first bytes:
``NotificationFilter.without_bulk``) are taken out before it is queued, so what waits is only the
lines analytics needs (``initialize``, thread, turn and steer traffic, every answer); what was
skipped is counted per direction, lines and bytes (``bulk_skipped_*`` in ``rpcAnalytics/status``).
What is kept is *packed* as it is queued (LZ4, each chunk on its own), because a flood that
never lets the relay idle keeps a lot (a 3M-message flood keeps ~95 MB of its 685 MB) and JSON
lines of one protocol share most of their bytes: packed they take ~18 MB, for ~5 µs a 64 KiB
chunk on the relay path (~26 µs for a chunk of answers, which are all kept; zlib's fastest
level packs tighter but costs 4-6 times as much, on the relay's thread). The session stays
flooded until every packed chunk was analysed, so the packed form does not flip back and
forth. ``backlog_bytes`` counts what is held, packed or not, and is what the bound limits.
The driver still analyses only when its relay has nothing ready: flooded or not, analytics
never takes time from the relay. Only a chunk that would take the backlog past the whole bound
is dropped unanalysed (counted as ``analytics_dropped_*``), and that direction resynchronises
at its next newline (the partial line around the gap is discarded rather than glued to the
wrong bytes). The relay never waits.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import msgspec
from lz4 import block as lz4_block

from .. import __version__
from ..core import Analyzer, AnyEvent, RuntimeInfo, Transport, encode_event, event_type_of
from ..core.envelope import Kind, classify
from ..core.prefilter import NotificationFilter
from ..core.tap import Direction
from ..host import host_runtime as default_host_runtime
from .extensions import Extensions, Reply
from .recording import Recorder

DEFAULT_MAX_BACKLOG_BYTES = 64 * 1024 * 1024
# Past 1/FLOOD_FRACTION of the bound, bulk is taken out of each new chunk and the rest packed.
# Early, because with relay first analysis only runs while the relay idles, and a relay that
# never idles must hold what analytics needs in the bound: a flood of 3M real-shaped messages
# (bench/flood_bench.py) keeps ~95 MB of its 693 MB, ~18 MB once packed.
FLOOD_FRACTION = 16
# A chunk kept while flooded is packed from this size on; a smaller one gains little on its own
# (LZ4 finds its repeats within the chunk) and is queued as it is.
PACK_MIN_BYTES = 2048
# The recording is put on disk when analysis is idle, at most this often (each flush is a
# write; the relay may be idle between every two messages).
RECORDER_FLUSH_INTERVAL_S = 0.2
# Events go to delivery together: when the analysis of a batch ends (the queue is drained),
# or once the oldest has waited this long while analysis goes on; and at most this often. Each
# submit that finds delivery idle wakes its thread (a cross-thread wake-up, tens of µs on a VM,
# and then a rival for the GIL): a session makes one hand-off per batch, a burst of events (a
# busy session, a benchmark) at most 1 / SUBMIT_INTERVAL_S a second. Delivery commits within
# 200 ms of a submit.
SUBMIT_INTERVAL_S = 0.05
# Delivery commits on its own thread, which needs the GIL. Analysis that never stops (a flood,
# the relay idle between every two chunks) leaves it a sliver: codex's events piled up in
# memory by the ten thousand (46 MB in bench/flood_bench.py). Past this many uncommitted, the
# driver lets the relay's fds wait with a timeout of DELIVERY_WAIT_S before the next slice,
# which gives the committer the GIL (``delivery_behind``); relaying is not delayed, a ready fd
# ends the wait.
DELIVERY_BEHIND_EVENTS = 2000
DELIVERY_WAIT_S = 0.001
_DIRECTIONS: tuple[Direction, Direction] = ("c2s", "s2c")
_EXTENSION = "ext"
_NO_LINES: list[bytes] = []
_NEWLINE = b"\n"
# Where a flooded direction stands in its stream (``None``: not flooded, chunks queued whole).
_AT_LINE_START = "start"  # the next byte starts a line
_KEEPING = "keep"  # inside a line that is queued


class DeliveryLike(Protocol):
    """What a session needs from delivery (``delivery.Delivery`` is one). An embedder's own
    (in_process.py) may also have ``uncommitted() -> int``, events not committed yet, which
    ``delivery_behind`` reads; without it, delivery is never behind."""

    def submit(self, events: Sequence[tuple[str, bytes]]) -> None: ...

    def status(self) -> Any: ...

    def flush(self, timeout: float) -> Any: ...


class DirectionCounters(msgspec.Struct):
    bytes: int = 0
    chunks: int = 0
    analytics_dropped_bytes: int = 0
    analytics_dropped_chunks: int = 0
    bulk_skipped_lines: int = 0  # notifications the tap never reads, skipped while flooded
    bulk_skipped_bytes: int = 0
    packed_bytes: int = 0  # kept while flooded, queued packed: their size as relayed
    packed_into_bytes: int = 0  # and packed


class TapSession:
    def __init__(
        self,
        *,
        transport: Transport,
        delivery: DeliveryLike | None,
        connection_id: int = 0,
        host_runtime: RuntimeInfo | None = None,
        recorder: Recorder | None = None,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.transport = transport
        self.connection_id = connection_id
        self.delivery = delivery
        self._uncommitted: Callable[[], int] | None = getattr(delivery, "uncommitted", None)
        self.recorder = recorder
        self.max_backlog_bytes = max_backlog_bytes
        self.info = dict(info or {})
        self.started_at = time.time()
        self.analyzer = Analyzer(host_runtime or default_host_runtime())
        self.analyzer.open(transport, connection_id)
        self.events_produced = 0
        self.events_by_type: dict[str, int] = {}
        self.extension_requests = 0
        # Never handled (skipped at the end, or arrived after it): answered ANALYTICS_ENDED.
        self.extension_requests_unanswered = 0
        self.answers_expected = 0  # extension requests (with an id) handed to the session
        self.analytics_skipped_bytes = 0  # queued, but the deadline or the end came first
        self.worker_error: str | None = None
        self.analytics_errors = 0
        self.relay = {d: DirectionCounters() for d in _DIRECTIONS}
        self.backlog_bytes = 0  # bytes of chunks queued and not analysed yet
        # Past this many bytes waiting, new chunks have their bulk taken out (module docstring).
        self.flood_bytes = max_backlog_bytes // FLOOD_FRACTION
        self._bulk_filter = NotificationFilter(
            self.analyzer.observer(connection_id).tap.notification_methods)
        self._bulk_state: dict[Direction, str | None] = {d: None for d in _DIRECTIONS}
        self._at_line_start = {d: True for d in _DIRECTIONS}
        self._gap = {d: False for d in _DIRECTIONS}
        self._packed_queued = 0  # packed chunks not analysed yet: the flood goes on
        # (direction or _EXTENSION, data, relayed at, bytes were dropped before, packed)
        self._queue: deque[tuple[str, bytes, float, bool, bool]] = deque()
        # Lines of the chunk being analysed that are not analysed yet (a 64 KiB chunk holds
        # hundreds: they are analysed a budget at a time).
        self._lines: list[bytes] = _NO_LINES
        self._line_index = 0
        self._line_direction: Direction = "c2s"
        self._line_now = 0.0
        self._extensions: Extensions | None = None
        self._recorder_dirty = False
        self._recorder_flushed_at = 0.0
        self._outgoing: list[tuple[str, bytes]] = []  # events held back (SUBMIT_INTERVAL_S)
        self._held_since = 0.0  # when the oldest of them was produced
        self._submitted_at = float("-inf")
        self.ended = False

    # -- relay side (hot path) ------------------------------------------------------------------

    def observe(self, direction: Direction, data: bytes, now: float) -> None:
        """``data`` was relayed in ``direction`` at ``now`` (``time.time()``). Chunks must be
        observed in the order they were relayed. Never blocks, never raises."""
        counters = self.relay[direction]
        size = len(data)
        counters.bytes += size
        counters.chunks += 1
        if self.ended:
            self.analytics_skipped_bytes += size
            return
        packed = False
        if self.backlog_bytes + size > self.flood_bytes or self._bulk_state[direction]:
            data = self._take_out_bulk(direction, data, counters)
            if not data:
                return
            size = kept = len(data)  # the counters count bytes as relayed, never packed
            if self._bulk_state[direction] and kept >= PACK_MIN_BYTES:  # still flooded
                data, packed = lz4_block.compress(data), True
                size = len(data)
        else:
            self._at_line_start[direction] = data[-1] == 10  # b"\n"
        backlog = self.backlog_bytes + size
        if backlog > self.max_backlog_bytes:
            counters.analytics_dropped_bytes += kept if packed else size
            counters.analytics_dropped_chunks += 1
            self._gap[direction] = True
            # The analyzer resyncs at the next newline: whatever chunk comes next, its first
            # line is dropped there, so taking out bulk must keep it (not skip it twice).
            self._bulk_state[direction] = None
            self._at_line_start[direction] = False
            return
        gap = self._gap[direction]
        if gap:
            self._gap[direction] = False
        self.backlog_bytes = backlog
        if packed:
            self._packed_queued += 1
            counters.packed_bytes += kept
            counters.packed_into_bytes += size
        self._queue.append((direction, data, now, gap, packed))

    def extension_request(self, line: bytes, now: float) -> None:
        """An ``rpcAnalytics/*`` line cut out of the client's stream; answered via ``reply``
        when :meth:`process` reaches it."""
        if classify(line).kind is Kind.REQUEST:  # not a notification: an answer is owed
            self.answers_expected += 1
        if self.ended:  # answered at once: analytics ended (Extensions.refuse)
            self.extension_requests_unanswered += 1
            if self._extensions is not None:
                self._extensions.refuse(line)
            return
        self._queue.append((_EXTENSION, line, now, False, False))

    def delivery_behind(self) -> bool:
        """Whether delivery has more than ``DELIVERY_BEHIND_EVENTS`` events to commit: the
        driver then waits ``DELIVERY_WAIT_S`` for its fds before the next slice."""
        uncommitted = self._uncommitted
        return uncommitted is not None and uncommitted() > DELIVERY_BEHIND_EVENTS

    @property
    def pending(self) -> bool:
        """Whether :meth:`process` has work to do."""
        return bool(self._queue) or self._line_index < len(self._lines)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, reply: Reply, *, argv: Sequence[str] = ()) -> None:
        """``reply`` receives each answer line; it is called from the extension executor's
        threads (and from the thread calling :meth:`process`), so it must be thread-safe."""
        self._extensions = Extensions(self, reply)
        if self.recorder is not None:
            self.recorder.start(started_at=self.started_at, argv=list(argv),
                                transport=self.transport)

    def finish(self, deadline: float, meta: dict[str, Any] | None = None) -> bool:
        """Analyse what is queued (until ``deadline``, a ``time.monotonic()`` value), end the
        connection, submit the last events, close the recording. True if done in time."""
        while self.pending and time.monotonic() < deadline:
            if self.delivery_behind():  # nothing to relay any more: just let it commit
                time.sleep(DELIVERY_WAIT_S)
            self.process(min(deadline - time.monotonic(), DELIVERY_WAIT_S * 10))
        return self.end(meta)

    def end(self, meta: dict[str, Any] | None = None) -> bool:
        """End analytics now: what is still queued is skipped (counted). True if nothing was.
        Every extension request handed over (with an id) has its answer handed to ``reply``
        before this returns: a real one if it was reached, else ``ANALYTICS_ENDED``; so do
        requests that come later (:meth:`extension_request`)."""
        if self.ended:
            return True
        complete = not self.pending
        skipped_requests = self._skip_queued()
        self.ended = True
        try:
            self._end(time.time(), meta)
        except Exception as error:  # never take the relay down with us
            self.analytics_errors += 1
            self.worker_error = f"{type(error).__name__}: {error}"
        if self._extensions is not None:
            # Every request handed over gets its answer before this returns (extensions.py).
            for line in skipped_requests:
                self._extensions.refuse(line)
            self._extensions.close()
        return complete

    @property
    def extension_answers(self) -> int:
        """Answers handed to ``reply`` so far."""
        return self._extensions.answers if self._extensions is not None else 0

    def idle_due(self) -> float | None:
        """When (``time.monotonic()``) the driver should call :meth:`process` again, even with
        nothing new relayed, so that held-back events go to delivery and the recording goes to
        disk; None when nothing waits."""
        due = None
        if self._outgoing:
            due = max(self._submitted_at + SUBMIT_INTERVAL_S, self._held_since)
        if self._recorder_dirty:
            flush = self._recorder_flushed_at + RECORDER_FLUSH_INTERVAL_S
            if due is None or flush < due:
                due = flush
        return due

    # -- extension provider ---------------------------------------------------------------------

    def status_snapshot(self) -> dict[str, Any]:
        """Counters for ``rpcAnalytics/status``, taken in relay order by :meth:`process`."""
        delivery = None
        if self.delivery is not None:
            try:
                delivery = msgspec.to_builtins(self.delivery.status())
            except Exception as error:  # a broken sink must not break the answer
                delivery = {"error": f"{type(error).__name__}: {error}"}
        return {
            "proxy": {
                "version": __version__,
                "transport": self.transport,
                "connection_id": self.connection_id,
                "started_at": self.started_at,
                "uptime_s": round(time.time() - self.started_at, 3),
                **self.info,
            },
            "relay": {
                **{d: msgspec.to_builtins(self.relay[d]) for d in _DIRECTIONS},
                "analytics_backlog_bytes": self.backlog_bytes,
                "analytics_max_backlog_bytes": self.max_backlog_bytes,
                "analytics_skipped_bytes": self.analytics_skipped_bytes,
                "extension_requests": self.extension_requests,
                "analytics_errors": self.analytics_errors,
            },
            "analyzer": msgspec.to_builtins(self.analyzer.stats()),
            "events": {"produced": self.events_produced, "by_type": dict(self.events_by_type)},
            "delivery": delivery,
            "recording": None if self.recorder is None else self.recorder.status(),
        }

    def flush(self, timeout: float) -> dict[str, Any]:
        """For ``rpcAnalytics/flush``; runs on the extension executor, never the relay."""
        if self.delivery is None:
            return {"complete": True, "uncommitted": 0, "sinks": {}}
        try:
            result: dict[str, Any] = msgspec.to_builtins(self.delivery.flush(timeout))
        except Exception as error:
            return {"complete": False, "uncommitted": 0, "sinks": {},
                    "failure": f"{type(error).__name__}: {error}"}
        return result

    # -- analysis -------------------------------------------------------------------------------

    def process(self, budget: float) -> bool:
        """Analyse queued work for about ``budget`` seconds (at least one line or request when
        there is any), in relay order. Returns whether work remains. Never raises."""
        if self.ended:
            return False
        clock = time.monotonic
        stop = clock() + budget
        queue = self._queue
        while True:
            if self._line_index < len(self._lines) and not self._analyse_lines(stop):
                return True
            if not queue:
                if self._outgoing and clock() >= self._submitted_at + SUBMIT_INTERVAL_S:
                    self._push()
                if (self._recorder_dirty
                        and clock() >= self._recorder_flushed_at + RECORDER_FLUSH_INTERVAL_S):
                    self._flush_recorder()
                return False
            kind, data, now, gap, packed = queue.popleft()
            if kind is _EXTENSION:
                self.extension_requests += 1
                if self._outgoing:  # the answer must account for every event before it
                    self._push()
                if self._recorder_dirty:  # and the recording for every line (or its failure)
                    self._flush_recorder()
                assert self._extensions is not None
                try:
                    self._extensions.handle(data)
                except Exception as error:
                    self.analytics_errors += 1
                    self.worker_error = f"{type(error).__name__}: {error}"
            else:
                direction: Direction = kind  # type: ignore[assignment]
                self.backlog_bytes -= len(data)
                try:
                    if packed:
                        self._packed_queued -= 1
                        data = lz4_block.decompress(data)
                    self._chunk(direction, data, now, gap)
                except Exception as error:  # a bug on one chunk must not end analytics
                    self._on_error(direction, error)
            if clock() >= stop:
                return self.pending

    def _analyse_lines(self, stop: float) -> bool:
        """Analyse the current chunk's lines until ``stop``; True when all are done."""
        lines, index = self._lines, self._line_index
        direction, now = self._line_direction, self._line_now
        feed_line = self.analyzer.feed_line
        connection = self.connection_id
        recorder = self.recorder
        clock = time.monotonic
        count = len(lines)
        try:
            while index < count:
                line = lines[index]
                index += 1
                events = feed_line(connection, direction, line, now)
                if recorder is not None:
                    recorder.line(now, direction, line)
                    self._recorder_dirty = True
                if events:
                    self._submit(events)
                if index < count and clock() >= stop:
                    self._line_index = index
                    return False
        except Exception as error:
            self._on_error(direction, error)
        self._lines, self._line_index = _NO_LINES, 0
        return True

    def _on_error(self, direction: Direction, error: Exception) -> None:
        self.analytics_errors += 1
        self.worker_error = f"{type(error).__name__}: {error}"
        self.analyzer.resync(self.connection_id, direction)
        self._lines, self._line_index = _NO_LINES, 0

    def _chunk(self, direction: Direction, data: bytes, now: float, gap: bool) -> None:
        if gap:
            self.analyzer.resync(self.connection_id, direction)  # bytes were skipped before
        lines = self.analyzer.lines(self.connection_id, direction, data)
        if lines:
            self._lines, self._line_index = lines, 0
            self._line_direction, self._line_now = direction, now

    def _take_out_bulk(self, direction: Direction, data: bytes,
                       counters: DirectionCounters) -> bytes:
        """What of ``data`` to queue while flooded: its whole bulk lines taken out. A line cut
        by a chunk boundary is kept (its start cannot tell all: a request's ``id`` may come
        after its method), so the bytes kept frame as the stream does, minus whole lines."""
        state = self._bulk_state[direction]
        if state is None:  # entering the flood: does this chunk start a line?
            state = _AT_LINE_START if self._at_line_start[direction] else _KEEPING
        elif (self.backlog_bytes + len(data) <= self.flood_bytes
              and not self._packed_queued):  # leaving it: analysis has caught up
            self._bulk_state[direction] = None
            self._at_line_start[direction] = data[-1] == 10
            return data
        parts = data.split(_NEWLINE)
        tail = parts.pop()  # what follows the last newline: the start of the next line
        self._bulk_state[direction] = _KEEPING if tail else _AT_LINE_START
        if not parts:
            return data  # inside one line
        candidates = parts if state == _AT_LINE_START else parts[1:]
        kept = self._bulk_filter.without_bulk(candidates)
        skipped = len(candidates) - len(kept)
        if not skipped:
            return data
        if state == _KEEPING:  # the first part ends a line that is queued
            kept.insert(0, parts[0])
        out = _NEWLINE.join(kept) + _NEWLINE + tail if kept else tail
        counters.bulk_skipped_lines += skipped
        counters.bulk_skipped_bytes += len(data) - len(out)
        return out

    def _skip_queued(self) -> list[bytes]:
        """Drop what is queued (counted); returns the extension lines among it."""
        skipped = sum(len(line) + 1 for line in self._lines[self._line_index :])
        self._lines, self._line_index = _NO_LINES, 0
        requests = []
        for kind, data, _now, _gap, packed in self._queue:
            if kind is _EXTENSION:
                self.extension_requests_unanswered += 1
                requests.append(data)
            else:  # counted as relayed: a packed chunk starts with its size (lz4.block's)
                skipped += int.from_bytes(data[:4], "little") if packed else len(data)
        self._queue.clear()
        self._packed_queued = 0
        self.backlog_bytes = 0
        self.analytics_skipped_bytes += skipped
        return requests

    def _flush_recorder(self) -> None:
        assert self.recorder is not None
        self.recorder.flush()
        self._recorder_dirty = False
        self._recorder_flushed_at = time.monotonic()

    def _record_line(self, direction: Direction, line: bytes, now: float) -> None:
        assert self.recorder is not None
        self.recorder.line(now, direction, line)

    def _submit(self, events: list[AnyEvent]) -> None:
        encoded = []
        for event in events:
            event_type = event_type_of(event)
            self.events_by_type[event_type] = self.events_by_type.get(event_type, 0) + 1
            encoded.append((event_type, encode_event(event)))
        self.events_produced += len(encoded)
        now = time.monotonic()
        if not self._outgoing:
            self._held_since = now
        self._outgoing.extend(encoded)
        if now >= self._held_since + SUBMIT_INTERVAL_S and (
                now >= self._submitted_at + SUBMIT_INTERVAL_S):
            self._push()  # a long batch: do not hold the first ones until its end

    def _push(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        self._submitted_at = time.monotonic()
        if self.delivery is not None:
            self.delivery.submit(outgoing)

    def _end(self, now: float, meta: dict[str, Any] | None) -> None:
        # A deadline may have skipped queued chunks: the partial lines are then incomplete.
        if self.analytics_skipped_bytes:
            for direction in _DIRECTIONS:
                self.analyzer.resync(self.connection_id, direction)
        events = self.analyzer.finish(now, None if self.recorder is None else self._record_line)
        if events:
            self._submit(events)
        if self._outgoing:
            self._push()
        if self.recorder is not None:
            self.recorder.close(now, meta)
