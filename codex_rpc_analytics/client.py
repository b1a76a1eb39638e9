"""``AnalyticsEventsClient``: the reference's in-process analytics client, for Python hosts.

A host (a Python app-server, an IDE extension host, a test harness) reports what it saw with
``track_*`` calls; the client turns them into the same events, through the same reducer,
durable outbox and sinks as the proxy: one pipeline, two producers.

Threads. A ``track_*`` call only builds a small fact and appends it to a ``deque`` (atomic in
CPython: no lock, no system call, no I/O, no decoding): it never blocks and never raises,
from any thread or from an event loop. It does not even wake the worker: the worker polls
(every 5 ms while facts arrive, backing off to 100 ms when idle), and only a queue past its
high-water mark, a ``flush`` or a ``close`` signals it. Waking a sleeping thread on every call
costs a futex system call and often a context switch on the caller's thread (tens of
microseconds, measured), for no benefit: events are batched for delivery anyway. The queue
is bounded (``max_queued_facts``); when full the fact is dropped and counted, and the worker
logs a rate-limited warning (the reference drops with an unthrottled warning per fact,
openai/codex #38296).

One worker thread owns the :class:`~.core.reducer.Reducer`: it decodes raw inputs,
canonicalises skill paths (the only file-system access, as the reference's ``skill_id``
does), reduces, encodes and hands the events to :meth:`Delivery.submit`, which is itself
non-blocking, so the worker never waits for the network either.

``flush`` puts a barrier on the queue, waits until the worker passes it, then flushes the
delivery, all within one deadline. ``close`` does the same and stops the worker.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from .core.app_events import InvocationType, PluginState, SkillScope
from .core.app_facts import (
    NO_CONNECTION,
    AppInvocation,
    AppsMentioned,
    AppUsed,
    PluginCapabilitySummary,
    PluginStateChanged,
    PluginTelemetryMetadata,
    PluginUsed,
    SkillInvocation,
    SkillsInvoked,
    TrackEventsContext,
)
from .core.app_reducer import AppReducerStats
from .core.events import encode_event, event_type_of
from .core.facts import (
    TRANSPORTS,
    Fact,
    Initialized,
    ThreadArchiveChanged,
    ThreadMethod,
    ThreadResponded,
    Transport,
)
from .core.reducer import Reducer, ReducerStats
from .core.runtime import RuntimeInfo
from .core.views import (
    InitializeParams,
    InitializeResult,
    ThreadArchiveNotification,
    ThreadRequestParams,
    ThreadResult,
)
from .core.views import decode_view as _decode_view
from .delivery import Delivery, FlushResult, SinkSpec, parse_sink_spec, resolve_state_dir
from .delivery._ratelimit import RateLimitedLog
from .delivery.codex_config import load_codex_config, resolve_codex_home
from .host import host_runtime

__all__ = [
    "AnalyticsEventsClient",
    "AppInvocation",
    "ClientFlushResult",
    "ClientStatus",
    "EventDelivery",
    "InvocationType",
    "JsonInput",
    "PluginCapabilitySummary",
    "PluginState",
    "PluginTelemetryMetadata",
    "SkillInvocation",
    "SkillScope",
    "TrackEventsContext",
]

LOGGER = "codex_rpc_analytics.client"
# The reference holds 256 facts and waits for each POST before taking the next; this worker
# never waits for the network, so the queue only absorbs bursts while it is not scheduled.
# 4,096 small facts are a few MB at worst.
DEFAULT_MAX_QUEUED_FACTS = 4096
DEFAULT_TIMEOUT_S = 5.0
# At interpreter exit: the SDK-style bounded attempt (python-stack.md §3.4); what is not
# delivered by then is already in the durable outbox, except facts still unreduced.
EXIT_TIMEOUT_S = 1.5
# Facts the worker takes from the queue per round (one ``submit`` per round).
_WORKER_BATCH = 512
# The worker's poll interval: short while facts arrive, doubling up to the long one when idle.
# So an event reaches the delivery at most 100 ms after an idle spell, 5 ms during activity
# (the delivery then batches for up to a second anyway).
POLL_ACTIVE_S = 0.005
POLL_IDLE_S = 0.1

JsonInput = bytes | bytearray | memoryview | str
"""Raw JSON of a message member (``params`` or ``result``), exactly as sent on the wire."""

_THREAD_METHODS: frozenset[str] = frozenset(("thread/start", "thread/resume", "thread/fork"))
_ARCHIVE_METHODS: dict[str, str] = {
    "thread/archived": "archived",
    "thread/unarchived": "unarchived",
}


class EventDelivery(Protocol):
    """Where encoded events go: :class:`~.delivery.Delivery` (durable outbox + sinks) is one."""

    def submit(self, events: Sequence[tuple[str, bytes]]) -> None: ...

    def flush(self, timeout: float) -> FlushResult: ...

    async def flush_async(self, timeout: float) -> FlushResult: ...

    def close(self, timeout: float) -> FlushResult: ...


class ClientFlushResult(msgspec.Struct):
    """``complete``: every fact tracked before the call was reduced and the delivery reports
    nothing pending. ``unreduced``: facts still queued at the deadline. ``delivery``: the
    delivery's own result (``None`` when disabled or when the worker missed the deadline)."""

    complete: bool
    unreduced: int
    delivery: FlushResult | None = None


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


# --- queue items -----------------------------------------------------------------------------


class _Barrier:
    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[None] = concurrent.futures.Future()


_STOP = object()


def _decode(raw: Any, view: type[Any]) -> Any:
    """A view from raw JSON (decoded on the worker) or the view itself; None if unusable."""
    if isinstance(raw, view):
        return raw
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    elif isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        return None
    return _decode_view(raw, view)


class _Initialize(msgspec.Struct, frozen=True, gc=False):
    """Raw inputs, decoded on the worker (untracked by the GC, like the facts)."""

    connection_id: int
    observed_at: float
    params: Any
    result: Any
    transport: str

    def facts(self, client: AnalyticsEventsClient) -> Sequence[Fact]:
        params = _decode(self.params, InitializeParams)
        result = _decode(self.result, InitializeResult) if self.result is not None else (
            InitializeResult())
        if params is None or result is None or self.transport not in TRANSPORTS:
            raise ValueError("unusable initialize params, result or transport")
        client._note_initialize(params)
        return (Initialized(self.connection_id, self.observed_at, self.transport,
                            params, result),)


class _Response(msgspec.Struct, frozen=True, gc=False):
    connection_id: int
    observed_at: float
    method: str
    result: Any
    params: Any

    def facts(self, client: AnalyticsEventsClient) -> Sequence[Fact]:
        result = _decode(self.result, ThreadResult)
        if result is None:
            raise ValueError("unusable thread result")
        params = _decode(self.params, ThreadRequestParams) if self.params is not None else None
        method: ThreadMethod = self.method  # type: ignore[assignment]
        return (ThreadResponded(self.connection_id, self.observed_at, method, result, params),)


class _Archive(msgspec.Struct, frozen=True, gc=False):
    connection_id: int
    observed_at: float
    action: str
    params: Any

    def facts(self, client: AnalyticsEventsClient) -> Sequence[Fact]:
        notification = _decode(self.params, ThreadArchiveNotification)
        if notification is None or notification.thread_id is None:
            raise ValueError("unusable archive notification")
        return (ThreadArchiveChanged(self.connection_id, self.observed_at,
                                     notification.thread_id, self.action,  # type: ignore[arg-type]
                                     round(self.observed_at * 1000)),)


def _canonical(path: str | None) -> str | None:
    """``std::fs::canonicalize`` or the path as given, as the reference's skill id does."""
    if path is None:
        return None
    try:
        return os.path.realpath(path, strict=True)
    except (OSError, ValueError):
        return path


def _with_canonical_paths(fact: SkillsInvoked) -> SkillsInvoked:
    invocations = tuple(
        msgspec.structs.replace(
            invocation,
            skill_path=_canonical(invocation.skill_path) or invocation.skill_path,
            repo_root=_canonical(invocation.repo_root),
        )
        for invocation in fact.invocations
    )
    return msgspec.structs.replace(fact, invocations=invocations)


# --- the client ------------------------------------------------------------------------------


class AnalyticsEventsClient:
    """Track analytics from a Python host; see the module docstring and the README.

    ``delivery`` receives the encoded events (the proxy's :class:`~.delivery.Delivery`, to
    share one outbox; the host starts and closes it unless ``owns_delivery``). ``originator``
    is the ``product_client_id`` of plugin state events and of contexts that name none; by
    default the first ``track_initialize``'s ``clientInfo.name``, as codex's app-server sets
    its originator, and ``"codex_cli_rs"`` before any. ``enabled=False``, a ``None``
    delivery or :meth:`disabled` make every call a no-op: no queue, no thread.
    """

    def __init__(
        self,
        delivery: EventDelivery | None,
        *,
        enabled: bool = True,
        originator: str | None = None,
        max_queued_facts: int = DEFAULT_MAX_QUEUED_FACTS,
        runtime: RuntimeInfo | None = None,
        owns_delivery: bool = False,
        close_at_exit: bool = True,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_queued_facts < 1:
            raise ValueError("max_queued_facts must be at least 1")
        self._delivery = delivery if enabled else None
        self._owns_delivery = owns_delivery
        self._enabled = enabled and delivery is not None
        self._max_queued = max_queued_facts
        self._clock = clock
        self._logger = logger or logging.getLogger(LOGGER)
        self._log = RateLimitedLog(self._logger)
        self._lock = threading.Lock()  # drops, close; never taken on the accepting path
        self._closed = False
        self._close_result: ClientFlushResult | None = None
        self._dropped = 0
        self._dropped_logged = 0
        self._originator_fixed = originator is not None
        self._reducer = Reducer(runtime or host_runtime())
        if originator is not None:
            self._reducer.apps.originator = originator
        self._status = ClientStatus(enabled=self._enabled, running=False)
        self._queue: deque[Any] | None = None
        self._wake = threading.Event()
        # Past this many queued facts a call wakes the worker instead of waiting for its poll.
        self._high_water = max(1, max_queued_facts // 2)
        self._thread: threading.Thread | None = None
        self._exit_hook: Callable[[], None] | None = None
        if not self._enabled:
            if owns_delivery and delivery is not None:
                delivery.close(0)
            return
        self._queue = deque()
        self._thread = threading.Thread(
            target=self._worker, name="codex-rpc-analytics-client", daemon=True
        )
        self._status.running = True
        self._thread.start()
        if close_at_exit:
            self._exit_hook = _exit_hook(weakref.ref(self))
            atexit.register(self._exit_hook)

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def disabled(cls) -> AnalyticsEventsClient:
        """A client whose every call is a no-op (analytics disabled)."""
        return cls(None, enabled=False)

    @classmethod
    def open(
        cls,
        *,
        sinks: Sequence[str | SinkSpec] = ("codex",),
        state_dir: Path | None = None,
        codex_home: Path | None = None,
        enabled: bool | None = None,
        **options: Any,
    ) -> AnalyticsEventsClient:
        """A client with its own started :class:`~.delivery.Delivery` (closed by ``close``).

        ``sinks`` are ``--sink`` values (``"codex"``, ``"https://…/"``, ``"jsonl:PATH"``) or
        parsed specs; a bad value raises :class:`~.delivery.SinkSpecError` here, never later.
        ``enabled=None`` follows codex's ``[analytics] enabled`` in ``config.toml``; a config
        that cannot be read counts as disabled (an opt-out must not be ignored).
        """
        home = resolve_codex_home(codex_home)
        if enabled is None:
            config = load_codex_config(home)
            enabled = config.error is None and config.analytics_enabled
        if not enabled:
            return cls.disabled()
        specs = [parse_sink_spec(s) if isinstance(s, str) else s for s in sinks]
        delivery = Delivery(state_dir=resolve_state_dir(state_dir), sinks=specs,
                            codex_home=home)
        delivery.start()
        return cls(delivery, owns_delivery=True, **options)

    def __enter__(self) -> AnalyticsEventsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def enabled(self) -> bool:
        return self._enabled

    # -- track_* (any thread, never blocks, never raises) ------------------------------------

    def track_initialize(
        self,
        connection_id: int,
        params: JsonInput | InitializeParams,
        result: JsonInput | InitializeResult | None,
        *,
        transport: Transport = "stdio",
    ) -> None:
        """An ``initialize`` request's ``params`` and the ``result`` answered to it, on the
        host's connection ``connection_id`` (any int the host uses to tell clients apart).

        Raw JSON is decoded on the worker with the core's views, so a Python app-server can
        pass the bytes it read and wrote. ``result`` carries ``userAgent`` and ``platformOs``
        (the ``runtime``); ``None`` uses this machine's values. Re-initializing a connection
        id replaces it, as in the reference.
        """
        self._put(_Initialize(connection_id, self._clock(), params, result, transport))

    def track_response(
        self,
        connection_id: int,
        method: str,
        result: JsonInput | ThreadResult,
        *,
        params: JsonInput | ThreadRequestParams | None = None,
    ) -> None:
        """A successful answer the host sent on ``connection_id`` to a ``method`` request.

        ``thread/start``, ``thread/resume`` and ``thread/fork`` results give
        ``codex_thread_initialized`` (once the connection was initialized), exactly as the proxy
        derives it from the wire; ``params`` (the request's) supplies what the result does not
        echo. Other methods are ignored (counted).
        """
        if method not in _THREAD_METHODS:
            self._ignore()
            return
        self._put(_Response(connection_id, self._clock(), method, result, params))

    def track_notification(
        self, connection_id: int, method: str, params: JsonInput | None
    ) -> None:
        """A server notification: ``thread/archived`` and ``thread/unarchived`` give
        ``codex_thread_archive_event`` (stamped with the call's time); others are ignored."""
        action = _ARCHIVE_METHODS.get(method)
        if action is None:
            self._ignore()
            return
        self._put(_Archive(connection_id, self._clock(), action, params))

    def track_skill_invocations(
        self, tracking: TrackEventsContext, invocations: Iterable[SkillInvocation]
    ) -> None:
        """One ``skill_invocation`` per invocation; nothing for an empty list."""
        try:
            batch = tuple(invocations)
        except Exception:
            self._fail()
            return
        if batch:
            self._put(SkillsInvoked(NO_CONNECTION, self._clock(), tracking, batch))

    def track_app_mentioned(
        self, tracking: TrackEventsContext, mentions: Iterable[AppInvocation]
    ) -> None:
        """One ``codex_app_mentioned`` per mention; nothing for an empty list."""
        try:
            batch = tuple(mentions)
        except Exception:
            self._fail()
            return
        if batch:
            self._put(AppsMentioned(NO_CONNECTION, self._clock(), tracking, batch))

    def track_app_used(self, tracking: TrackEventsContext, app: AppInvocation) -> None:
        """``codex_app_used``, once per (turn, connector id)."""
        self._put(AppUsed(NO_CONNECTION, self._clock(), tracking, app))

    def track_plugin_used(
        self, tracking: TrackEventsContext, plugin: PluginTelemetryMetadata
    ) -> None:
        """``codex_plugin_used``, once per (turn, plugin id)."""
        self._put(PluginUsed(NO_CONNECTION, self._clock(), tracking, plugin))

    def track_plugin_installed(self, plugin: PluginTelemetryMetadata) -> None:
        self._plugin_state(plugin, "installed")

    def track_plugin_uninstalled(self, plugin: PluginTelemetryMetadata) -> None:
        self._plugin_state(plugin, "uninstalled")

    def track_plugin_enabled(self, plugin: PluginTelemetryMetadata) -> None:
        self._plugin_state(plugin, "enabled")

    def track_plugin_disabled(self, plugin: PluginTelemetryMetadata) -> None:
        self._plugin_state(plugin, "disabled")

    def _plugin_state(self, plugin: PluginTelemetryMetadata, state: PluginState) -> None:
        self._put(PluginStateChanged(NO_CONNECTION, self._clock(), plugin, state))

    def _put(self, item: Any) -> None:
        """The whole cost of a call on the caller's thread: a size check and an append.

        Concurrent callers may overshoot the bound by at most their number (the check and the
        append are two steps); no lock is worth closing that gap.
        """
        try:
            q = self._queue
            if q is None:
                return  # disabled
            size = len(q)
            if self._closed or size >= self._max_queued:
                with self._lock:
                    self._dropped += 1
                return
            q.append(item)
            if size >= self._high_water and not self._wake.is_set():
                self._wake.set()  # a burst: do not let it wait for the next poll
        except Exception:  # never raise into the host
            self._fail()

    def _ignore(self) -> None:
        if self._enabled:
            with self._lock:
                self._status.ignored += 1

    def _fail(self) -> None:
        if self._enabled:
            with self._lock:
                self._status.failed += 1

    # -- flush / close / status ---------------------------------------------------------------

    def flush(self, timeout: float = DEFAULT_TIMEOUT_S) -> ClientFlushResult:
        """Reduce everything tracked so far and flush the delivery, within ``timeout`` s."""
        deadline = time.monotonic() + max(timeout, 0.0)
        barrier = self._barrier()
        if barrier is None:
            return self._idle_result()
        try:
            barrier.future.result(max(deadline - time.monotonic(), 0.0))
        except concurrent.futures.TimeoutError:
            return self._unreduced_result()
        return self._flush_delivery(deadline)

    async def flush_async(self, timeout: float = DEFAULT_TIMEOUT_S) -> ClientFlushResult:
        """``flush`` for asyncio code: waits without blocking the event loop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout, 0.0)
        barrier = self._barrier()
        if barrier is None:
            return self._idle_result()
        try:
            await asyncio.wait_for(asyncio.wrap_future(barrier.future),
                                   max(deadline - loop.time(), 0.0))
        except TimeoutError:
            return self._unreduced_result()
        delivery = self._delivery
        if delivery is None:
            return ClientFlushResult(complete=True, unreduced=0)
        result = await delivery.flush_async(max(deadline - loop.time(), 0.0))
        return ClientFlushResult(complete=result.complete, unreduced=0, delivery=result)

    def close(self, timeout: float = DEFAULT_TIMEOUT_S) -> ClientFlushResult:
        """Stop accepting, reduce what is queued, then close an owned delivery (or flush a
        shared one), all within ``timeout`` s. Later calls are no-ops; closing twice returns
        the first result."""
        deadline = time.monotonic() + max(timeout, 0.0)
        with self._lock:
            if self._close_result is not None:
                return self._close_result
            first = not self._closed
            self._closed = True
        if self._exit_hook is not None:
            atexit.unregister(self._exit_hook)
            self._exit_hook = None
        q, thread = self._queue, self._thread
        if q is None or thread is None:
            result = self._idle_result()
        else:
            if first:
                q.append(_STOP)
                self._wake.set()
            thread.join(max(deadline - time.monotonic(), 0.0))
            if thread.is_alive():
                result = self._unreduced_result()
            else:
                result = self._finish_delivery(deadline)
        with self._lock:
            self._close_result = result
            self._status.running = False
        return result

    async def close_async(self, timeout: float = DEFAULT_TIMEOUT_S) -> ClientFlushResult:
        return await asyncio.to_thread(self.close, timeout)

    def status(self) -> ClientStatus:
        q = self._queue
        with self._lock:
            status = msgspec.structs.replace(
                self._status,
                queued=len(q) if q is not None else 0,
                dropped=self._dropped,
                apps=msgspec.structs.replace(self._reducer.apps.stats),
                reducer=msgspec.structs.replace(self._reducer.stats),
            )
        return status

    def _barrier(self) -> _Barrier | None:
        q, thread = self._queue, self._thread
        if q is None or thread is None or not thread.is_alive():
            return None
        barrier = _Barrier()
        q.append(barrier)  # never refused: a flush must not be dropped by a full queue
        self._wake.set()
        return barrier

    def _idle_result(self) -> ClientFlushResult:
        """Disabled: trivially complete. Worker gone: whatever is queued stays unreduced."""
        unreduced = len(self._queue) if self._queue is not None else 0
        return ClientFlushResult(complete=not self._enabled, unreduced=unreduced)

    def _unreduced_result(self) -> ClientFlushResult:
        unreduced = len(self._queue) if self._queue is not None else 0
        return ClientFlushResult(complete=False, unreduced=unreduced)

    def _flush_delivery(self, deadline: float) -> ClientFlushResult:
        delivery = self._delivery
        if delivery is None:
            return ClientFlushResult(complete=True, unreduced=0)
        try:
            result = delivery.flush(max(deadline - time.monotonic(), 0.0))
        except Exception as exc:
            self._logger.warning("analytics delivery flush failed: %s", type(exc).__name__)
            return ClientFlushResult(complete=False, unreduced=0)
        return ClientFlushResult(complete=result.complete, unreduced=0, delivery=result)

    def _finish_delivery(self, deadline: float) -> ClientFlushResult:
        delivery = self._delivery
        if delivery is None or not self._owns_delivery:
            return self._flush_delivery(deadline)
        try:
            result = delivery.close(max(deadline - time.monotonic(), 0.0))
        except Exception as exc:
            self._logger.warning("analytics delivery close failed: %s", type(exc).__name__)
            return ClientFlushResult(complete=False, unreduced=0)
        return ClientFlushResult(complete=result.complete, unreduced=0, delivery=result)

    # -- the worker thread ------------------------------------------------------------------

    def _note_initialize(self, params: InitializeParams) -> None:
        """codex's app-server takes its originator from the first client's name."""
        name = params.client_info.name if params.client_info is not None else None
        if not self._originator_fixed and name:
            self._reducer.apps.originator = name
            self._originator_fixed = True

    def _worker(self) -> None:
        q = self._queue
        assert q is not None
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
                    batch = [q.popleft() for _ in range(min(len(q), _WORKER_BATCH))]
                    if self._run_batch(batch):
                        return
        finally:
            with self._lock:
                self._status.running = False

    def _run_batch(self, batch: list[Any]) -> bool:
        """Reduce one batch in order; barriers release once what precedes them is submitted.
        True when the stop sentinel was seen."""
        encoded: list[tuple[str, bytes]] = []
        stop = False
        reduced = failed = 0
        for item in batch:
            if isinstance(item, _Barrier):
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
            self._status.reduced += reduced
            self._status.failed += failed
            dropped = self._dropped
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
            facts: Sequence[Fact] = (
                item.facts(self) if not isinstance(item, Fact) else (item,)
            )
            for fact in facts:
                if isinstance(fact, SkillsInvoked):
                    fact = _with_canonical_paths(fact)
                for event in self._reducer.apply(fact):
                    out.append((event_type_of(event), encode_event(event)))
        except Exception as exc:
            # The input is the host's data: name the problem, never log its content.
            self._log.warning("bad-fact", "analytics fact could not be reduced: %s",
                              type(exc).__name__)
            return False
        return True

    def _submit(self, encoded: list[tuple[str, bytes]]) -> None:
        if not encoded or self._delivery is None:
            return
        try:
            self._delivery.submit(encoded)
        except Exception as exc:
            self._log.warning("submit", "analytics delivery refused events: %s",
                              type(exc).__name__)
            return
        with self._lock:
            self._status.events += len(encoded)


def _exit_hook(ref: weakref.ReferenceType[AnalyticsEventsClient]) -> Callable[[], None]:
    def close_at_exit() -> None:
        client = ref()
        if client is not None:
            client.close(EXIT_TIMEOUT_S)

    return close_at_exit
