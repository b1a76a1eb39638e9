"""The reducer: the only stateful rules in the core. Facts in, events out.

State mirrors the reference reducer (docs/analytics-events.md §9): connections (client and
runtime from ``initialize``), threads (the connection that owns each thread and the metadata
and configuration later events copy). Every map is bounded and counts evictions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from .bounded import BoundedMap
from .events import AnyEvent, AppServerClient, ThreadInitialized, ThreadInitializedParams
from .facts import Fact, Initialized, ThreadMethod, ThreadResponded, ThreadStarted
from .runtime import RuntimeInfo, parse_runtime
from .views import SandboxPolicy, ThreadView

NO_EVENTS: Sequence[AnyEvent] = ()

INITIALIZATION_MODES: dict[ThreadMethod, str] = {
    "thread/start": "new",
    "thread/resume": "resumed",
    "thread/fork": "forked",
}


class ReducerStats(msgspec.Struct):
    events: int = 0
    thread_responses_without_initialize: int = 0
    failed_requests: int = 0
    runtime_fallbacks: int = 0
    connections_evicted: int = 0
    threads_evicted: int = 0


class ConnectionState(msgspec.Struct):
    client: AppServerClient
    runtime: RuntimeInfo


class ThreadState(msgspec.Struct):
    """What later turn and steer events copy from the thread's latest result."""

    connection_id: int
    session_id: str
    ephemeral: bool
    thread_source: str | None
    initialization_mode: str
    subagent_source: str | None
    parent_thread_id: str | None
    # Effective configuration: the thread result's, with turn/start overrides applied.
    model: str | None = None
    model_provider: str | None = None
    service_tier: str | None = None
    approval_policy: Any = None
    approvals_reviewer: str | None = None
    sandbox: SandboxPolicy | None = None
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    personality: str | None = None
    collaboration_mode: str | None = None
    has_history: bool = False


def subagent_source_of(source: Any) -> str | None:
    """``{"subAgent": S}`` -> the analytics name of S (docs/analytics-events.md §4 row 10)."""
    if not isinstance(source, dict):
        return None
    sub_agent = source.get("subAgent")
    if isinstance(sub_agent, str):
        return sub_agent
    if isinstance(sub_agent, dict) and sub_agent:
        if "other" in sub_agent and isinstance(sub_agent["other"], str):
            return sub_agent["other"]
        # {"thread_spawn": {...}} and any later object-shaped variant: its name.
        return str(next(iter(sub_agent)))
    return None


def _created_at(thread: ThreadView) -> int:
    created = thread.created_at
    return created if created is not None and created > 0 else 0


class Reducer:
    DEFAULT_MAX_CONNECTIONS = 1024
    DEFAULT_MAX_THREADS = 10_000

    def __init__(
        self,
        host_runtime: RuntimeInfo,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_threads: int = DEFAULT_MAX_THREADS,
    ) -> None:
        self.host_runtime = host_runtime
        self.stats = ReducerStats()
        self.connections: BoundedMap[int, ConnectionState] = BoundedMap(max_connections)
        self.threads: BoundedMap[str, ThreadState] = BoundedMap(max_threads)
        self._handlers: dict[type[Fact], Callable[[Any], Sequence[AnyEvent]]] = {
            Initialized: self._on_initialized,
            ThreadResponded: self._on_thread_responded,
            ThreadStarted: self._on_thread_started,
        }

    def apply(self, fact: Fact) -> Sequence[AnyEvent]:
        handler = self._handlers.get(type(fact))
        if handler is None:
            return NO_EVENTS
        events = handler(fact)
        self.stats.events += len(events)
        return events

    # -- connections ---------------------------------------------------------------------------

    def _on_initialized(self, fact: Initialized) -> Sequence[AnyEvent]:
        client_info = fact.params.client_info
        name = client_info.name if client_info is not None else None
        if name is None:
            return NO_EVENTS
        capabilities = fact.params.capabilities
        experimental = (
            capabilities.experimental_api
            if isinstance(capabilities, msgspec.Struct)
            else None
        )
        client = AppServerClient(
            product_client_id=name,
            client_name=name,
            client_version=client_info.version if client_info is not None else None,
            rpc_transport=fact.transport,
            experimental_api_enabled=experimental,
        )
        runtime, fallbacks = parse_runtime(
            fact.result.user_agent, fact.result.platform_os, self.host_runtime
        )
        self.stats.runtime_fallbacks += fallbacks
        # Re-initializing a connection id overwrites it, as in the reference.
        if self.connections.put(fact.connection_id, ConnectionState(client, runtime)):
            self.stats.connections_evicted += 1
        return NO_EVENTS

    # -- threads -------------------------------------------------------------------------------

    def _on_thread_responded(self, fact: ThreadResponded) -> Sequence[AnyEvent]:
        result = fact.result
        thread = result.thread
        if thread is None or thread.id is None:
            return NO_EVENTS
        mode = INITIALIZATION_MODES[fact.method]
        request = fact.request
        state = ThreadState(
            connection_id=fact.connection_id,
            session_id=thread.session_id or thread.id,
            ephemeral=thread.ephemeral,
            thread_source=thread.thread_source,
            initialization_mode=mode,
            subagent_source=subagent_source_of(thread.source),
            parent_thread_id=thread.parent_thread_id,
            model=result.model if result.model is not None else thread.model,
            model_provider=(
                result.model_provider if result.model_provider is not None
                else thread.model_provider
            ),
            service_tier=result.service_tier,
            approval_policy=result.approval_policy,
            approvals_reviewer=result.approvals_reviewer,
            sandbox=result.sandbox,
            reasoning_effort=result.reasoning_effort,
            personality=request.personality if request is not None else None,
            collaboration_mode=(
                result.collaboration_mode.mode if result.collaboration_mode is not None else None
            ),
            has_history=thread.has_history(),
        )
        self._remember_thread(thread.id, state)
        connection = self.connections.get(fact.connection_id)
        if connection is None:
            # The reference requires initialize and never replays later (docs §4).
            self.stats.thread_responses_without_initialize += 1
            return NO_EVENTS
        return (
            ThreadInitialized(
                ThreadInitializedParams(
                    thread_id=thread.id,
                    session_id=state.session_id,
                    app_server_client=connection.client,
                    runtime=connection.runtime,
                    model=state.model or "",
                    ephemeral=state.ephemeral,
                    is_worktree=None,  # not observable on the wire
                    thread_source=state.thread_source,
                    initialization_mode=mode,
                    subagent_source=state.subagent_source,
                    parent_thread_id=state.parent_thread_id,
                    forked_from_thread_id=thread.forked_from_id,
                    created_at=_created_at(thread),
                )
            ),
        )

    def _on_thread_started(self, fact: ThreadStarted) -> Sequence[AnyEvent]:
        # Root threads were already announced by their response; subagents come in issue 5.
        return NO_EVENTS

    def _remember_thread(self, thread_id: str, state: ThreadState) -> None:
        if self.threads.put(thread_id, state):
            self.stats.threads_evicted += 1
