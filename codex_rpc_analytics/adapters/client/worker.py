"""The queue and the worker: one thread owns the reducer; callers only append.

A ``track_*`` call appends one small item to a ``deque`` (atomic in CPython: no lock, no
system call, no I/O, no decoding): it never blocks and never raises, from any thread or from
an event loop. It does not even wake the worker: the worker polls (every 5 ms while facts
arrive, backing off to 100 ms when idle), and only a queue past its high-water mark, a flush
or a stop signals it. Waking a sleeping thread on every call costs a futex system call and
often a context switch on the caller's thread (tens of microseconds, measured), for no
benefit: events are batched for delivery anyway. The queue is bounded; when full the item is
dropped and counted, and the worker logs a rate-limited warning (the reference drops with an
unthrottled warning per fact, openai/codex #38296).

The worker decodes raw inputs, reduces, encodes and hands the events to the delivery's
``submit``, which is itself non-blocking, so the worker never waits for the network either.
A flush puts a barrier on the queue; it is released once everything before it is submitted.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

from ...core.app_reducer import AppReducerStats
from ...core.events import encode_event, event_type_of
from ...core.facts import Initialized
from ...core.reducer import Reducer, ReducerStats
from ...delivery import FlushResult
from ...delivery._ratelimit import RateLimitedLog
from .inputs import facts_of

# Items the worker takes from the queue per round (one ``submit`` per round).
WORKER_BATCH = 512
# The worker's poll interval: short while facts arrive, doubling up to the long one when idle.
# So an event reaches the delivery at most 100 ms after an idle spell, 5 ms during activity
# (the delivery then batches for up to a second anyway).
POLL_ACTIVE_S = 0.005
POLL_IDLE_S = 0.1


class EventDelivery(Protocol):
    """Where encoded events go: :class:`~.delivery.Delivery` (durable outbox + sinks) is one."""

    def submit(self, events: Sequence[tuple[str, bytes]]) -> None: ...

    def flush(self, timeout: float) -> FlushResult: ...

    async def flush_async(self, timeout: float) -> FlushResult: ...

    def close(self, timeout: float) -> FlushResult: ...


class ClientStatus(msgspec.Struct):
    enabled: bool
    running: bool
    # Facts waiting for the worker; dropped (queue full, or tracked after close); reduced;
    # failed (undecodable input, or the reducer raised); ignored (a response or notification
    # of a method the client does not track).
    queued: int = 0
    dropped: int = 0
    reduced: int = 0
    failed: int = 0
    ignored: int = 0
    events: int = 0
    apps: AppReducerStats = msgspec.field(default_factory=AppReducerStats)
    reducer: ReducerStats = msgspec.field(default_factory=ReducerStats)


class Barrier:
    """Released by the worker once everything queued before it has been submitted."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[None] = concurrent.futures.Future()


_STOP = object()


class FactWorker:
    """The bounded queue and the thread that drains it into ``delivery``."""

    def __init__(
        self,
        reducer: Reducer,
        delivery: EventDelivery,
        *,
        max_queued: int,
        logger: logging.Logger,
        originator_fixed: bool,
    ) -> None:
        self.reducer = reducer
        self._delivery = delivery
        self._max_queued = max_queued
        # Past this many queued items a call wakes the worker instead of waiting for its poll.
        self._high_water = max(1, max_queued // 2)
        self._log = RateLimitedLog(logger)
        self._lock = threading.Lock()  # counters; never taken on the accepting path
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._originator_fixed = originator_fixed
        self.dropped = 0
        self._dropped_logged = 0
        self.status = ClientStatus(enabled=True, running=True)
        self._thread = threading.Thread(
            target=self._run, name="codex-rpc-analytics-client", daemon=True
        )
        self._thread.start()

    # -- caller side (any thread) ----------------------------------------------------------------

    def put(self, item: Any) -> None:
        """The whole cost of a call on the caller's thread: a size check and an append.

        Concurrent callers may overshoot the bound by at most their number (the check and the
        append are two steps); no lock is worth closing that gap. Raises nothing the caller
        did not cause (the client catches everything anyway).
        """
        q = self._queue
        size = len(q)
        if self._closed or size >= self._max_queued:
            with self._lock:
                self.dropped += 1
            return
        q.append(item)
        if size >= self._high_water and not self._wake.is_set():
            self._wake.set()  # a burst: do not let it wait for the next poll

    def count(self, *, ignored: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.status.ignored += ignored
            self.status.failed += failed

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def barrier(self) -> Barrier | None:
        """A barrier on the queue (never refused: a flush must not be dropped by a full
        queue), or None when the worker is gone."""
        if not self._thread.is_alive():
            return None
        barrier = Barrier()
        self._queue.append(barrier)
        self._wake.set()
        return barrier

    def stop(self, timeout: float) -> bool:
        """Refuse new items, reduce what is queued, stop. True if the worker ended in time."""
        with self._lock:
            first = not self._closed
            self._closed = True
        if first:
            self._queue.append(_STOP)
            self._wake.set()
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    def snapshot(self) -> ClientStatus:
        with self._lock:
            return msgspec.structs.replace(
                self.status,
                queued=len(self._queue),
                dropped=self.dropped,
                apps=msgspec.structs.replace(self.reducer.apps.stats),
                reducer=msgspec.structs.replace(self.reducer.stats),
            )

    # -- the worker thread -----------------------------------------------------------------------

    def _run(self) -> None:
        q = self._queue
        wake = self._wake
        interval = POLL_ACTIVE_S
        try:
            while True:
                wake.wait(interval)
                # A signal arriving between wait() and clear() is not lost: the deque is
                # drained below whatever the event says.
                wake.clear()
                if not q:
                    interval = min(interval * 2, POLL_IDLE_S)
                    continue
                interval = POLL_ACTIVE_S
                while q:
                    batch = [q.popleft() for _ in range(min(len(q), WORKER_BATCH))]
                    if self._run_batch(batch):
                        return
        finally:
            with self._lock:
                self.status.running = False

    def _run_batch(self, batch: list[Any]) -> bool:
        """Reduce one batch in order; barriers release once what precedes them is submitted.
        True when the stop sentinel was seen."""
        encoded: list[tuple[str, bytes]] = []
        stop = False
        reduced = failed = 0
        for item in batch:
            if isinstance(item, Barrier):
                self._submit(encoded)
                encoded = []
                if not item.future.done():
                    item.future.set_result(None)
            elif item is _STOP:
                stop = True
            elif self._reduce(item, encoded):
                reduced += 1
            else:
                failed += 1
        self._submit(encoded)
        with self._lock:
            self.status.reduced += reduced
            self.status.failed += failed
            dropped = self.dropped
        if dropped > self._dropped_logged:
            self._log.warning(
                "queue-full",
                "analytics facts dropped: the client queue (%d facts) is full; %d dropped so far",
                self._max_queued, dropped,
            )
            self._dropped_logged = dropped
        return stop

    def _reduce(self, item: Any, out: list[tuple[str, bytes]]) -> bool:
        try:
            for fact in facts_of(item):
                if isinstance(fact, Initialized):
                    self._note_initialize(fact)
                for event in self.reducer.apply(fact):
                    out.append((event_type_of(event), encode_event(event)))
        except Exception as exc:
            # The input is the host's data: name the problem, never log its content.
            self._log.warning("bad-fact", "analytics fact could not be reduced: %s",
                              type(exc).__name__)
            return False
        return True

    def _note_initialize(self, fact: Initialized) -> None:
        """codex's app-server takes its originator from the first client's name."""
        info = fact.params.client_info
        name = info.name if info is not None else None
        if not self._originator_fixed and name:
            self.reducer.apps.originator = name
            self._originator_fixed = True

    def _submit(self, encoded: list[tuple[str, bytes]]) -> None:
        if not encoded:
            return
        try:
            self._delivery.submit(encoded)
        except Exception as exc:
            self._log.warning("submit", "analytics delivery refused events: %s",
                              type(exc).__name__)
            return
        with self._lock:
            self.status.events += len(encoded)
