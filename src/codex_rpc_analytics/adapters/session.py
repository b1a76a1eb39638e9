"""The analytics side of a proxied connection: one worker thread that owns the ``Analyzer``.

The relay queues ``(direction, chunk, time)`` just before it writes the chunk
(:meth:`TapSession.observe`: an append to a deque, never a wait) and wakes the worker after
the write (:meth:`TapSession.notify`). The worker frames the chunks
into lines, taps them, hands the events to delivery (``submit`` never blocks), writes the
recording, and answers the ``rpcAnalytics/*`` requests the relay cut out of the client's
stream (in order with the bytes around them, so a status reflects everything relayed before).

The backlog between relay and worker is bounded in bytes (``max_backlog_bytes``, 256 MiB by
default). A chunk that would exceed it is not analysed: it is counted as dropped for
analytics, and that direction resynchronises at its next newline (the partial line around
the gap is discarded rather than glued to the wrong bytes). The relay never waits.

Each direction has exactly one producer thread, so every counter here has a single writer
and needs no lock.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from .. import __version__
from ..core import Analyzer, AnyEvent, RuntimeInfo, Transport, encode_event, event_type_of
from ..core.framing import LineFramer
from ..core.tap import Direction
from ..host import host_runtime as default_host_runtime
from .extensions import Extensions, Reply
from .recording import Recorder

DEFAULT_MAX_BACKLOG_BYTES = 256 * 1024 * 1024
_DIRECTIONS: tuple[Direction, Direction] = ("c2s", "s2c")
_EXTENSION = "ext"
_STOP = "stop"


class DeliveryLike(Protocol):
    """What a session needs from delivery (``delivery.Delivery`` is one)."""

    def submit(self, events: Sequence[tuple[str, bytes]]) -> None: ...

    def status(self) -> Any: ...

    def flush(self, timeout: float) -> Any: ...


class DirectionCounters(msgspec.Struct):
    bytes: int = 0
    chunks: int = 0
    analytics_dropped_bytes: int = 0
    analytics_dropped_chunks: int = 0


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
        self.recorder = recorder
        self.max_backlog_bytes = max_backlog_bytes
        self.info = dict(info or {})
        self.started_at = time.time()
        self.analyzer = Analyzer(host_runtime or default_host_runtime())
        self.analyzer.open(transport, connection_id)
        self.events_produced = 0
        self.events_by_type: dict[str, int] = {}
        self.extension_requests = 0
        self.analytics_skipped_at_deadline = 0
        self.worker_error: str | None = None
        self.analytics_errors = 0
        # Single-writer counters: [direction] written by that direction's producer only.
        self.relay = {d: DirectionCounters() for d in _DIRECTIONS}
        self._enqueued = {d: 0 for d in _DIRECTIONS}
        self._gap = {d: False for d in _DIRECTIONS}
        # Written by the worker only.
        self._consumed = {d: 0 for d in _DIRECTIONS}
        self._queue: deque[tuple[str, bytes, float, bool]] = deque()
        self._wake = threading.Event()
        self._framers = {d: LineFramer(Analyzer.DEFAULT_MAX_LINE_BYTES) for d in _DIRECTIONS}
        self._resyncing = {d: False for d in _DIRECTIONS}
        self._extensions: Extensions | None = None
        self._thread: threading.Thread | None = None
        self._deadline = float("inf")
        self._finish_meta: dict[str, Any] | None = None
        self._finished = threading.Event()

    # -- relay side (hot path) ------------------------------------------------------------------

    def observe(self, direction: Direction, data: bytes, now: float) -> None:
        """``data`` is about to be relayed in ``direction``: call it *before* writing, then
        :meth:`notify` after. Enqueueing first keeps cause before effect for the tap (a reply
        can never be queued ahead of its request, whichever relay thread runs first); waking
        the worker after keeps its cost off the write. Never blocks, never raises."""
        counters = self.relay[direction]
        size = len(data)
        counters.bytes += size
        counters.chunks += 1
        enqueued = self._enqueued
        backlog = enqueued["c2s"] + enqueued["s2c"] - self._consumed["c2s"] - self._consumed["s2c"]
        if backlog + size > self.max_backlog_bytes:
            counters.analytics_dropped_bytes += size
            counters.analytics_dropped_chunks += 1
            self._gap[direction] = True
            return
        gap = self._gap[direction]
        if gap:
            self._gap[direction] = False
        enqueued[direction] += size
        self._queue.append((direction, data, now, gap))

    def notify(self) -> None:
        """Wake the worker for what :meth:`observe` queued."""
        if not self._wake.is_set():
            self._wake.set()

    def extension_request(self, line: bytes, now: float) -> None:
        """An ``rpcAnalytics/*`` line cut out of the client's stream; answered via ``reply``."""
        self._queue.append((_EXTENSION, line, now, False))
        self._wake.set()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, reply: Reply, *, argv: Sequence[str] = ()) -> None:
        self._extensions = Extensions(self, reply)
        if self.recorder is not None:
            self.recorder.start(started_at=self.started_at, argv=list(argv),
                                transport=self.transport)
        self._thread = threading.Thread(target=self._run, name="codex-rpc-analytics-tap",
                                        daemon=True)
        self._thread.start()

    def finish(self, deadline: float, meta: dict[str, Any] | None = None) -> bool:
        """Analyse what is queued (until ``deadline``, a ``time.monotonic()`` value), end the
        connection, submit the last events, close the recording. True if done in time."""
        self._deadline = deadline
        self._finish_meta = meta
        self._queue.append((_STOP, b"", time.time(), False))
        self._wake.set()
        if self._thread is None:
            return True
        done = self._finished.wait(max(deadline - time.monotonic(), 0.0))
        if self._extensions is not None:
            self._extensions.close()
        return done

    @property
    def extension_answers(self) -> int:
        """Answers handed to ``reply`` so far."""
        return self._extensions.answers if self._extensions is not None else 0

    @property
    def backlog_bytes(self) -> int:
        return sum(self._enqueued.values()) - sum(self._consumed.values())

    # -- extension provider ---------------------------------------------------------------------

    def status_snapshot(self) -> dict[str, Any]:
        """Counters for ``rpcAnalytics/status``; taken on the worker thread."""
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
                "extension_requests": self.extension_requests,
                "analytics_errors": self.analytics_errors,
            },
            "analyzer": msgspec.to_builtins(self.analyzer.stats()),
            "events": {"produced": self.events_produced, "by_type": dict(self.events_by_type)},
            "delivery": delivery,
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

    # -- worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as error:  # never take the relay down with us
            self.worker_error = f"{type(error).__name__}: {error}"
        finally:
            self._finished.set()

    def _loop(self) -> None:
        queue = self._queue
        wake = self._wake
        while True:
            wake.clear()
            while queue:
                kind, data, now, gap = queue.popleft()
                if kind is _STOP:
                    self._end(now)
                    return
                if kind is _EXTENSION:
                    self.extension_requests += 1
                    assert self._extensions is not None
                    self._extensions.handle(data)
                    continue
                direction: Direction = kind  # type: ignore[assignment]
                self._consumed[direction] += len(data)
                if time.monotonic() > self._deadline:
                    self.analytics_skipped_at_deadline += len(data)
                    continue
                try:
                    self._chunk(direction, data, now, gap)
                except Exception as error:  # a bug on one chunk must not end analytics
                    self.analytics_errors += 1
                    self.worker_error = f"{type(error).__name__}: {error}"
                    self._framers[direction] = LineFramer(Analyzer.DEFAULT_MAX_LINE_BYTES)
                    self._resyncing[direction] = True
            if self.recorder is not None:
                self.recorder.flush()  # idle: put what we have on disk
            wake.wait()

    def _chunk(self, direction: Direction, data: bytes, now: float, gap: bool) -> None:
        if gap:
            # Bytes were skipped before this chunk: the current partial line is garbage.
            self._framers[direction] = LineFramer(Analyzer.DEFAULT_MAX_LINE_BYTES)
            self._resyncing[direction] = True
        if self._resyncing[direction]:
            newline = data.find(b"\n")
            if newline < 0:
                return
            self._resyncing[direction] = False
            data = data[newline + 1 :]
        lines = self._framers[direction].feed(data)
        if lines:
            self._lines(direction, lines, now)

    def _lines(self, direction: Direction, lines: list[bytes], now: float) -> None:
        feed_line = self.analyzer.feed_line
        connection = self.connection_id
        recorder = self.recorder
        for line in lines:
            events = feed_line(connection, direction, line, now)
            if recorder is not None:
                recorder.line(now, direction, line)
            if events:
                self._submit(events)

    def _submit(self, events: list[AnyEvent]) -> None:
        encoded = []
        for event in events:
            event_type = event_type_of(event)
            self.events_by_type[event_type] = self.events_by_type.get(event_type, 0) + 1
            encoded.append((event_type, encode_event(event)))
        self.events_produced += len(encoded)
        if self.delivery is not None:
            self.delivery.submit(encoded)

    def _end(self, now: float) -> None:
        for direction in _DIRECTIONS:
            if self._resyncing[direction]:
                continue
            line = self._framers[direction].finish()
            if line is not None:
                self._lines(direction, [line], now)
        events = self.analyzer.finish(now)
        if events:
            self._submit(events)
        if self.recorder is not None:
            self.recorder.close(now, self._finish_meta)
