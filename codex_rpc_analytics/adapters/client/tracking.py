"""``AnalyticsEventsClient``: the ``track_*`` face a Python host calls.

Each call builds one small input (inputs.py) and hands it to the worker's queue (worker.py);
``flush`` and ``close`` put a barrier on the queue, wait until the worker passes it, then
flush (or close) the delivery, all within one deadline.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ...core.app_events import PluginState
from ...core.app_facts import (
    NO_CONNECTION,
    AppInvocation,
    AppsMentioned,
    AppUsed,
    PluginStateChanged,
    PluginTelemetryMetadata,
    PluginUsed,
    SkillInvocation,
    SkillsInvoked,
    TrackEventsContext,
)
from ...core.facts import Transport
from ...core.reducer import Reducer
from ...core.runtime import RuntimeInfo
from ...core.views import InitializeParams, InitializeResult, ThreadRequestParams, ThreadResult
from ...delivery import Delivery, FlushResult, SinkSpec, parse_sink_spec, resolve_state_dir
from ...delivery.codex_config import load_codex_config, resolve_codex_home
from ...host import host_runtime
from .inputs import (
    ARCHIVE_METHODS,
    THREAD_METHODS,
    ArchiveInput,
    InitializeInput,
    JsonInput,
    ResponseInput,
)
from .worker import ClientStatus, EventDelivery, FactWorker

LOGGER = "codex_rpc_analytics.client"
# The reference holds 256 facts and waits for each POST before taking the next; this worker
# never waits for the network, so the queue only absorbs bursts while it is not scheduled.
# 4,096 small facts are a few MB at worst.
DEFAULT_MAX_QUEUED_FACTS = 4096
DEFAULT_TIMEOUT_S = 5.0
# At interpreter exit: the SDK-style bounded attempt (python-stack.md §3.4); what is not
# delivered by then is already in the durable outbox, except facts still unreduced.
EXIT_TIMEOUT_S = 1.5


class ClientFlushResult(msgspec.Struct):
    """``complete``: every fact tracked before the call was reduced and the delivery reports
    nothing pending. ``unreduced``: facts still queued at the deadline. ``delivery``: the
    delivery's own result (``None`` when disabled or when the worker missed the deadline)."""

    complete: bool
    unreduced: int
    delivery: FlushResult | None = None


class AnalyticsEventsClient:
    """Track analytics from a Python host; see the package docstring and the README.

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
        self._clock = clock
        self._logger = logger or logging.getLogger(LOGGER)
        self._close_result: ClientFlushResult | None = None
        self._closing = False
        self._worker: FactWorker | None = None
        self._exit_hook: Callable[[], None] | None = None
        if self._delivery is None:
            if owns_delivery and delivery is not None:
                delivery.close(0)
            return
        reducer = Reducer(runtime or host_runtime())
        if originator is not None:
            reducer.apps.originator = originator
        self._worker = FactWorker(reducer, self._delivery, max_queued=max_queued_facts,
                                  logger=self._logger, originator_fixed=originator is not None)
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
        self._put(InitializeInput(connection_id, self._clock(), params, result, transport))

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
        if method not in THREAD_METHODS:
            self._count(ignored=1)
            return
        self._put(ResponseInput(connection_id, self._clock(), method, result, params))

    def track_notification(
        self, connection_id: int, method: str, params: JsonInput | None
    ) -> None:
        """A server notification: ``thread/archived`` and ``thread/unarchived`` give
        ``codex_thread_archive_event`` (stamped with the call's time); others are ignored."""
        action = ARCHIVE_METHODS.get(method)
        if action is None:
            self._count(ignored=1)
            return
        self._put(ArchiveInput(connection_id, self._clock(), action, params))

    def track_skill_invocations(
        self, tracking: TrackEventsContext, invocations: Iterable[SkillInvocation]
    ) -> None:
        """One ``skill_invocation`` per invocation; nothing for an empty list."""
        try:
            batch = tuple(invocations)
        except Exception:
            self._count(failed=1)
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
            self._count(failed=1)
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
        worker = self._worker
        if worker is None:
            return  # disabled
        try:
            worker.put(item)
        except Exception:  # never raise into the host
            self._count(failed=1)

    def _count(self, *, ignored: int = 0, failed: int = 0) -> None:
        if self._worker is not None:
            self._worker.count(ignored=ignored, failed=failed)

    # -- flush / close / status ---------------------------------------------------------------

    def flush(self, timeout: float = DEFAULT_TIMEOUT_S) -> ClientFlushResult:
        """Reduce everything tracked so far and flush the delivery, within ``timeout`` s."""
        deadline = time.monotonic() + max(timeout, 0.0)
        barrier = self._worker.barrier() if self._worker is not None else None
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
        barrier = self._worker.barrier() if self._worker is not None else None
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
        if self._close_result is not None:
            return self._close_result
        if self._exit_hook is not None:
            atexit.unregister(self._exit_hook)
            self._exit_hook = None
        worker = self._worker
        if worker is None:
            result = self._idle_result()
        elif worker.stop(deadline - time.monotonic()):
            result = self._finish_delivery(deadline)
        else:
            result = self._unreduced_result()
        self._close_result = result
        return result

    async def close_async(self, timeout: float = DEFAULT_TIMEOUT_S) -> ClientFlushResult:
        return await asyncio.to_thread(self.close, timeout)

    def status(self) -> ClientStatus:
        if self._worker is None:
            return ClientStatus(enabled=False, running=False)
        return self._worker.snapshot()

    def _idle_result(self) -> ClientFlushResult:
        """Disabled: trivially complete. Worker gone: whatever is queued stays unreduced."""
        unreduced = self._worker.queued if self._worker is not None else 0
        return ClientFlushResult(complete=not self._enabled, unreduced=unreduced)

    def _unreduced_result(self) -> ClientFlushResult:
        unreduced = self._worker.queued if self._worker is not None else 0
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


def _exit_hook(ref: weakref.ReferenceType[AnalyticsEventsClient]) -> Callable[[], None]:
    def close_at_exit() -> None:
        client = ref()
        if client is not None:
            client.close(EXIT_TIMEOUT_S)

    return close_at_exit
