"""The reducer: the only stateful rules in the core. Facts in, events out.

State mirrors the reference reducer (docs/analytics-events.md §9): connections (client and
runtime from ``initialize``), threads (the connection that owns each thread, its metadata and
effective configuration) and open turns. Unlike the reference, every map is bounded and
counts what it lets go, and a turn that never completes still yields an event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from .app_reducer import AppReducer
from .bounded import BoundedMap
from .client_info import AppServerClient
from .error_kinds import NoSteerEvent, steer_rejection_reason
from .events import (
    AnyEvent,
    ThreadInitialized,
    ThreadInitializedParams,
    TurnSteerEvent,
    TurnSteerParams,
)
from .facts import (
    ApprovalAnswered,
    CompactionStarted,
    ConnectionClosed,
    Fact,
    Initialized,
    InterruptAnswered,
    ItemCompleted,
    QueueChanged,
    RequestFailed,
    SteerAnswered,
    ThreadMethod,
    ThreadResponded,
    ThreadStarted,
    TokenUsageUpdated,
    TurnCompleted,
    TurnDiffUpdated,
    TurnStartAnswered,
    TurnStarted,
    TurnTaskRequested,
)
from .item_views import ToolItemView
from .model_catalog import ModelCatalog, catalog_for
from .runtime import RuntimeInfo, parse_runtime
from .tool_reducer import (
    ToolContext,
    compaction_event,
    fingerprints_event,
    review_event,
    review_outcome,
    tool_event,
)
from .turn_config import TurnConfig
from .turns import (
    TASK_TURNS,
    CompactionState,
    ReviewTally,
    ThreadContext,
    TurnState,
    count_images,
    inline_image_sizes,
)
from .views import ThreadView, TokenBreakdown, TurnView

NO_EVENTS: Sequence[AnyEvent] = ()

INITIALIZATION_MODES: dict[ThreadMethod, str] = {
    "thread/start": "new",
    "thread/resume": "resumed",
    "thread/fork": "forked",
}
# A turn on a thread the tap never saw announced (attached mid-session): the thread existed
# before the tap, which is what "resumed" says. A deliberate deviation; see the README.
UNSEEN_THREAD_MODE = "resumed"


class ReducerStats(msgspec.Struct):
    events: int = 0
    thread_responses_without_initialize: int = 0
    failed_requests: int = 0
    runtime_fallbacks: int = 0
    connections_evicted: int = 0
    threads_evicted: int = 0
    turns_evicted: int = 0
    turns_incomplete: int = 0
    turns_without_context: int = 0
    turns_on_unseen_threads: int = 0
    late_turn_facts: int = 0
    steers_without_context: int = 0
    tool_events_without_context: int = 0
    subagents_without_parent: int = 0
    catalog_version_fallbacks: int = 0
    task_turns: int = 0


class ConnectionState(msgspec.Struct):
    client: AppServerClient
    runtime: RuntimeInfo
    catalog: ModelCatalog  # the model catalog of the connection's codex version


class ThreadState(msgspec.Struct):
    connection_id: int
    context: ThreadContext
    config: TurnConfig
    has_history: bool
    # The latest cumulative token usage seen for the thread (replays included): the
    # baseline the next turn's usage is measured from (§5.5 rule 1).
    token_total: TokenBreakdown | None = None
    # review/start or thread/compact/start was asked for: the thread's next new turn is that.
    pending_task: str | None = None
    # Prompts queued with thread/queue/add, oldest first: codex runs each as a later turn.
    queued: list[QueuedPrompt] | None = None
    # The size of the context after the thread's latest sampling request (the `last` usage's
    # total): what a compaction starts from.
    context_tokens: int | None = None
    last_turn_model: str | None = None  # the model of the thread's previous turn


class QueuedPrompt(msgspec.Struct):
    """What a queued prompt's turn will report of its input (not the input itself)."""

    submission_id: str | None
    image_count: int
    image_sizes: list[tuple[int, int]]


MAX_QUEUED_PROMPTS = 64


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


def spawn_parent_of(source: Any) -> str | None:
    """``thread_spawn.parent_thread_id`` of a spawned agent's source, if any."""
    if isinstance(source, dict):
        sub_agent = source.get("subAgent")
        if isinstance(sub_agent, dict):
            spawn = sub_agent.get("thread_spawn")
            if isinstance(spawn, dict) and isinstance(spawn.get("parent_thread_id"), str):
                return str(spawn["parent_thread_id"])
    return None


def _created_at(thread: ThreadView) -> int:
    created = thread.created_at
    return created if created is not None and created > 0 else 0


class Reducer:
    DEFAULT_MAX_CONNECTIONS = 1024
    DEFAULT_MAX_THREADS = 10_000
    DEFAULT_MAX_TURNS = 4096

    def __init__(
        self,
        host_runtime: RuntimeInfo,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_threads: int = DEFAULT_MAX_THREADS,
        max_turns: int = DEFAULT_MAX_TURNS,
    ) -> None:
        self.host_runtime = host_runtime
        self.stats = ReducerStats()
        self.connections: BoundedMap[int, ConnectionState] = BoundedMap(max_connections)
        self.threads: BoundedMap[str, ThreadState] = BoundedMap(max_threads)
        self.turns: BoundedMap[str, TurnState] = BoundedMap(max_turns)
        # Turns codex runs as tasks (a review answers with its turn id; its inner turns name
        # it as their root): turn id -> task.
        self.task_turns: BoundedMap[str, str] = BoundedMap(max_turns)
        self._handlers: dict[type[Fact], Callable[[Any], Sequence[AnyEvent]]] = {
            Initialized: self._on_initialized,
            ThreadResponded: self._on_thread_responded,
            ThreadStarted: self._on_thread_started,
            RequestFailed: self._on_request_failed,
            TurnStartAnswered: self._on_turn_start_answered,
            TurnStarted: self._on_turn_started,
            TurnCompleted: self._on_turn_completed,
            TokenUsageUpdated: self._on_token_usage,
            ItemCompleted: self._on_item_completed,
            SteerAnswered: self._on_steer_answered,
            InterruptAnswered: self._on_interrupt_answered,
            TurnTaskRequested: self._on_turn_task_requested,
            TurnDiffUpdated: self._on_turn_diff,
            QueueChanged: self._on_queue_changed,
            ApprovalAnswered: self._on_approval_answered,
            CompactionStarted: self._on_compaction_started,
            ConnectionClosed: self._on_connection_closed,
        }
        # Skills, apps, plugins (client facts) and thread archive changes: app_reducer.py.
        self.apps = AppReducer(self)
        self._handlers.update(self.apps.handlers)

    def apply(self, fact: Fact) -> Sequence[AnyEvent]:
        handler = self._handlers.get(type(fact))
        if handler is None:
            return NO_EVENTS
        events = handler(fact)
        self.stats.events += len(events)
        return events

    def flush_open_turns(self) -> list[AnyEvent]:
        """End of session: every turn still open becomes an incomplete event."""
        events: list[AnyEvent] = []
        for _, turn in self.turns.drain():
            events.extend(self._incomplete_turn_event(turn))
        self.stats.events += len(events)
        return events

    # -- connections ---------------------------------------------------------------------------

    def _on_initialized(self, fact: Initialized) -> Sequence[AnyEvent]:
        client_info = fact.params.client_info
        name = client_info.name if client_info is not None else None
        if client_info is None or name is None:
            return NO_EVENTS
        capabilities = fact.params.capabilities
        experimental = (
            capabilities.experimental_api if isinstance(capabilities, msgspec.Struct) else None
        )
        client = AppServerClient(
            product_client_id=name,
            client_name=name,
            client_version=client_info.version,
            rpc_transport=fact.transport,
            experimental_api_enabled=experimental,
        )
        runtime, fallbacks = parse_runtime(
            fact.result.user_agent, fact.result.platform_os, self.host_runtime
        )
        self.stats.runtime_fallbacks += fallbacks
        catalog, own = catalog_for(runtime.codex_rs_version)
        if not own:
            self.stats.catalog_version_fallbacks += 1
        # Re-initializing a connection id overwrites it, as in the reference.
        if self.connections.put(fact.connection_id, ConnectionState(client, runtime, catalog)):
            self.stats.connections_evicted += 1
        return NO_EVENTS

    def _on_connection_closed(self, fact: ConnectionClosed) -> Sequence[AnyEvent]:
        """Turns of a closed connection never complete: flush them, counted."""
        closing = [
            turn_id for turn_id in self.turns
            if self._turn_connection(self.turns.get(turn_id)) == fact.connection_id
        ]
        events: list[AnyEvent] = []
        for turn_id in closing:
            turn = self.turns.pop(turn_id)
            if turn is not None:
                events.extend(self._incomplete_turn_event(turn))
        return events

    def _on_request_failed(self, fact: RequestFailed) -> Sequence[AnyEvent]:
        # Failed thread and turn/start requests give no event (the reference discards them).
        self.stats.failed_requests += 1
        return NO_EVENTS

    # -- threads -------------------------------------------------------------------------------

    def _on_thread_responded(self, fact: ThreadResponded) -> Sequence[AnyEvent]:
        result = fact.result
        thread = result.thread
        if thread is None or thread.id is None:
            return NO_EVENTS
        mode = INITIALIZATION_MODES[fact.method]
        previous = self.threads.get(thread.id)
        config = TurnConfig.from_thread_result(result, fact.request)
        state = ThreadState(
            connection_id=fact.connection_id,
            context=ThreadContext(
                session_id=thread.session_id or thread.id,
                ephemeral=thread.ephemeral,
                thread_source=thread.thread_source,
                initialization_mode=mode,
                subagent_source=subagent_source_of(thread.source),
                parent_thread_id=thread.parent_thread_id,
                multi_agent_version=self._multi_agent_version(
                    fact.method, thread, previous, config.model, fact.connection_id),
            ),
            config=config,
            has_history=thread.has_history(),
            token_total=previous.token_total if previous is not None else None,
        )
        self._remember_thread(thread.id, state)
        connection = self.connections.get(fact.connection_id)
        if connection is None:
            # The reference requires initialize and never replays later (docs §4).
            self.stats.thread_responses_without_initialize += 1
            return NO_EVENTS
        return (self._thread_initialized(thread, state.context, connection.client,
                                         connection.runtime, result.model),)

    def _multi_agent_version(
        self,
        method: ThreadMethod,
        thread: ThreadView,
        previous: ThreadState | None,
        model: str | None,
        connection_id: int,
    ) -> str:
        """codex fixes a thread's multi-agent version when the thread starts, from its model;
        a resume keeps it and a fork inherits its source's (where the tap saw them)."""
        if method == "thread/resume" and previous is not None:
            known = previous.context.multi_agent_version
        elif method == "thread/fork" and thread.forked_from_id is not None:
            source = self.threads.get(thread.forked_from_id)
            known = source.context.multi_agent_version if source is not None else None
        else:
            known = None
        if known is not None:
            return known
        return self.catalog(connection_id).defaults(model).multi_agent_version

    def catalog(self, connection_id: int | None) -> ModelCatalog:
        """The model catalog of the codex version behind a connection."""
        connection = self.connections.get(connection_id) if connection_id is not None else None
        return connection.catalog if connection is not None else catalog_for(None)[0]

    def _on_thread_started(self, fact: ThreadStarted) -> Sequence[AnyEvent]:
        """Subagent threads are announced only by ``thread/started`` (§6): a wire
        approximation of the reference's core-side fact."""
        thread = fact.thread
        subagent_source = subagent_source_of(thread.source)
        if thread.id is None or subagent_source is None or thread.id in self.threads:
            return NO_EVENTS  # root threads were announced by their response
        parent_id = thread.parent_thread_id or spawn_parent_of(thread.source)
        parent = self.threads.get(parent_id) if parent_id is not None else None
        connection = self.connections.get(parent.connection_id) if parent is not None else None
        if parent is None or connection is None:
            self.stats.subagents_without_parent += 1
            return NO_EVENTS
        parent_client = connection.client
        if parent_client.client_name is None or parent_client.client_version is None:
            # "skipping subagent thread analytics: missing inherited client metadata"
            self.stats.subagents_without_parent += 1
            return NO_EVENTS
        context = ThreadContext(
            session_id=thread.session_id or thread.id,
            ephemeral=thread.ephemeral,
            thread_source=thread.thread_source,
            initialization_mode="new",
            subagent_source=subagent_source,
            parent_thread_id=parent_id,
            multi_agent_version=parent.context.multi_agent_version,
        )
        # The subagent's turns belong to the parent's connection.
        self._remember_thread(thread.id, ThreadState(
            connection_id=parent.connection_id,
            context=context,
            config=msgspec.structs.replace(parent.config, model=thread.model,
                                           model_provider=thread.model_provider),
            has_history=thread.has_history(),
        ))
        client = msgspec.structs.replace(parent_client, rpc_transport="in_process",
                                         experimental_api_enabled=None)
        return (self._thread_initialized(thread, context, client, connection.runtime,
                                         thread.model),)

    def _thread_initialized(
        self,
        thread: ThreadView,
        context: ThreadContext,
        client: AppServerClient,
        runtime: RuntimeInfo,
        model: str | None,
    ) -> ThreadInitialized:
        assert thread.id is not None
        return ThreadInitialized(ThreadInitializedParams(
            thread_id=thread.id,
            session_id=context.session_id,
            app_server_client=client,
            runtime=runtime,
            model=model or thread.model or "",
            ephemeral=context.ephemeral,
            is_worktree=None,  # not observable on the wire
            thread_source=context.thread_source,
            initialization_mode=context.initialization_mode,
            subagent_source=context.subagent_source,
            parent_thread_id=context.parent_thread_id,
            forked_from_thread_id=thread.forked_from_id,
            created_at=_created_at(thread),
        ))

    def _remember_thread(self, thread_id: str, state: ThreadState) -> None:
        if self.threads.put(thread_id, state):
            self.stats.threads_evicted += 1

    # -- turns ---------------------------------------------------------------------------------

    def _open_turn(self, turn_id: str, thread_id: str | None) -> tuple[TurnState,
                                                                     list[AnyEvent]]:
        """The turn's state, created by whichever of its facts arrives first."""
        turn = self.turns.get(turn_id)
        if turn is not None:
            return turn, []
        thread = self.threads.get(thread_id) if thread_id is not None else None
        if thread is not None:
            is_first = not thread.has_history
            thread.has_history = True
        else:
            is_first = False  # unknowable; most turns are not a thread's first
        turn = TurnState(
            turn_id=turn_id,
            thread_id=thread_id,
            connection_id=None,
            config=thread.config if thread is not None else None,
            is_first_turn=is_first,
            token_baseline=thread.token_total if thread is not None else None,
            previous_turn_model=thread.last_turn_model if thread is not None else None,
        )
        evicted = self.turns.put(turn_id, turn)
        if evicted is None:
            return turn, []
        self.stats.turns_evicted += 1
        return turn, list(self._incomplete_turn_event(evicted[1]))

    def _on_turn_start_answered(self, fact: TurnStartAnswered) -> Sequence[AnyEvent]:
        params = fact.params
        if fact.turn is None or fact.turn.id is None:
            return NO_EVENTS
        thread = self.threads.get(params.thread_id) if params.thread_id is not None else None
        if thread is not None:
            # Overrides persist for the thread's later turns (§5.3).
            thread.config = thread.config.with_overrides(params)
        turn, events = self._open_turn(fact.turn.id, params.thread_id)
        turn.connection_id = fact.connection_id
        turn.num_input_images = count_images(params.input)
        turn.add_images(params.input)
        turn.turn_trigger = params.turn_trigger
        turn.root_turn_id = turn.root_turn_id or fact.turn.root_turn_id
        if isinstance(params.service_tier_for_turn, str):
            turn.service_tier_for_turn = params.service_tier_for_turn
        turn.config = thread.config if thread is not None else (
            (turn.config or TurnConfig()).with_overrides(params))
        return events

    def _on_turn_task_requested(self, fact: TurnTaskRequested) -> Sequence[AnyEvent]:
        if fact.turn_id is not None:
            self.task_turns.put(fact.turn_id, fact.task)
            return NO_EVENTS
        thread = self.threads.get(fact.thread_id) if fact.thread_id is not None else None
        if thread is not None:
            thread.pending_task = fact.task
        return NO_EVENTS

    def _on_turn_started(self, fact: TurnStarted) -> Sequence[AnyEvent]:
        if fact.turn.id is None:
            return NO_EVENTS
        opened_by_request = fact.turn.id in self.turns
        turn, events = self._open_turn(fact.turn.id, fact.thread_id)
        thread = self.threads.get(fact.thread_id) if fact.thread_id is not None else None
        task = (self.task_turns.get(fact.turn.id)
                or self.task_turns.get(fact.turn.root_turn_id or ""))
        if task is not None:
            turn.task = task
        elif not opened_by_request and thread is not None and thread.pending_task is not None:
            turn.task, thread.pending_task = thread.pending_task, None
        elif not opened_by_request and thread is not None and thread.queued:
            # No turn/start: the thread ran the oldest queued prompt.
            self._run_queued(turn, thread.queued.pop(0))
        started = fact.turn.started_at
        turn.started_at = started if started is not None and started >= 0 else None
        turn.root_turn_id = fact.turn.root_turn_id or turn.root_turn_id
        return events

    def _on_turn_completed(self, fact: TurnCompleted) -> Sequence[AnyEvent]:
        turn_id = fact.turn.id
        if turn_id is None:
            return NO_EVENTS
        turn = self.turns.pop(turn_id)
        events: list[AnyEvent] = []
        if turn is None:
            # Started before the tap saw it: an event with what is known (a deviation).
            turn, events = self._open_turn(turn_id, fact.thread_id)
            self.turns.pop(turn_id)
        thread = self.threads.get(turn.thread_id) if turn.thread_id is not None else None
        if thread is not None and turn.task is None:
            thread.last_turn_model = (turn.config or thread.config).model
        if turn.task in TASK_TURNS or turn_id in self.task_turns:
            # codex posts no turn event for a review or a manual compaction.
            self.stats.task_turns += 1
            return events
        event = self._turn_event(turn, fact.turn)
        if event is not None:
            events.append(event)
            if turn.diff and turn.thread_id is not None:
                # After a turn that changed files, codex posts the lines it added and deleted.
                completed_at = fact.turn.completed_at
                events.append(fingerprints_event(
                    turn.thread_id, turn.turn_id, (turn.config or TurnConfig()).model,
                    completed_at if completed_at is not None and completed_at >= 0 else 0,
                    turn.diff))
        return events

    def _on_queue_changed(self, fact: QueueChanged) -> Sequence[AnyEvent]:
        thread_id = fact.params.thread_id
        thread = self.threads.get(thread_id) if thread_id is not None else None
        if thread is None:
            return NO_EVENTS
        queued = thread.queued if thread.queued is not None else []
        thread.queued = queued
        if fact.action == "add":
            if len(queued) < MAX_QUEUED_PROMPTS:
                inputs = fact.params.input
                queued.append(QueuedPrompt(fact.submission_id, count_images(inputs),
                                           inline_image_sizes(inputs)))
            return NO_EVENTS
        index = next((i for i, prompt in enumerate(queued)
                      if prompt.submission_id == fact.submission_id), None)
        if fact.action == "start" and index is None and fact.params.queued_submission_id is None:
            index = 0 if queued else None  # no id: the queue's head
        prompt = queued.pop(index) if index is not None else None
        events: list[AnyEvent] = []
        if fact.action == "start" and fact.turn_id is not None:
            turn, events = self._open_turn(fact.turn_id, thread_id)
            turn.connection_id = fact.connection_id
            if prompt is not None:
                self._run_queued(turn, prompt)
        return events

    @staticmethod
    def _run_queued(turn: TurnState, prompt: QueuedPrompt) -> None:
        turn.turn_trigger = "queue"
        turn.num_input_images = prompt.image_count
        if prompt.image_sizes:
            turn.image_sizes = (turn.image_sizes or []) + prompt.image_sizes

    def _on_turn_diff(self, fact: TurnDiffUpdated) -> Sequence[AnyEvent]:
        turn = self.turns.get(fact.turn_id) if fact.turn_id else None
        if turn is not None:
            turn.diff = fact.diff
        return NO_EVENTS

    def _on_token_usage(self, fact: TokenUsageUpdated) -> Sequence[AnyEvent]:
        notification = fact.notification
        usage = notification.token_usage
        total = usage.total if usage is not None else None
        if total is None:
            return NO_EVENTS
        # Replays after resume/fork name a finished turn: they only move the baseline.
        turn = self.turns.get(notification.turn_id) if notification.turn_id else None
        last = usage.last if usage is not None else None
        # A compaction reports the size of the compacted context as a `last` with nothing but
        # a total.
        compacted = (last is not None and last.input_tokens == 0 and last.output_tokens == 0
                     and last.total_tokens > 0)
        if turn is not None:
            turn.token_total = total
            if compacted and turn.compaction is not None:
                turn.compaction.context_tokens_after = last.total_tokens  # type: ignore[union-attr]
            elif not compacted:
                turn.sampled = True
        thread = self.threads.get(notification.thread_id) if notification.thread_id else None
        if thread is not None:
            thread.token_total = total
            if last is not None:
                thread.context_tokens = last.total_tokens
        return NO_EVENTS

    def _on_item_completed(self, fact: ItemCompleted) -> Sequence[AnyEvent]:
        notification = fact.notification
        turn = self.turns.get(notification.turn_id) if notification.turn_id else None
        if turn is None:
            self.stats.late_turn_facts += 1
        elif notification.item is not None:
            turn.count_item(notification.item)
        item = notification.item
        if (item is not None and item.type == "contextCompaction" and turn is not None
                and turn.compaction is not None):
            return self._compaction_event(turn, item.started_at_ms, item.completed_at_ms)
        tool = fact.tool
        if tool is None or notification.thread_id is None or notification.turn_id is None:
            return NO_EVENTS
        events: list[AnyEvent] = list(self._spawned_agents(notification.thread_id, tool))
        context = self._tool_context(notification.thread_id, notification.turn_id, turn)
        if context is None:
            self.stats.tool_events_without_context += 1
            return events
        event = tool_event(tool, context)
        if event is not None:
            events.append(event)
        return events

    def _compaction_event(self, turn: TurnState, started_ms: int | None,
                          completed_ms: int | None) -> Sequence[AnyEvent]:
        compaction, turn.compaction = turn.compaction, None
        thread = self.threads.get(turn.thread_id) if turn.thread_id is not None else None
        connection_id = self._turn_connection(turn)
        connection = self.connections.get(connection_id) if connection_id is not None else None
        if compaction is None or thread is None or connection is None or turn.thread_id is None:
            self.stats.tool_events_without_context += 1
            return NO_EVENTS
        model = (turn.config or thread.config).model
        switched = turn.previous_turn_model is not None and model != turn.previous_turn_model
        return (compaction_event(turn.thread_id, turn.turn_id, thread.context,
                                 connection.client, connection.runtime, compaction,
                                 model_switched=switched, started_ms=started_ms,
                                 completed_ms=completed_ms),)

    def _adopt_early_turns(self, thread_id: str, thread: ThreadState) -> None:
        """An agent's first turn can start before the item that announces its thread: give
        such a turn what it would have had."""
        for turn_id in list(self.turns):
            turn = self.turns.get(turn_id)
            if turn is None or turn.thread_id != thread_id or turn.config is not None:
                continue
            turn.config = thread.config
            turn.is_first_turn = not thread.has_history
            thread.has_history = True

    def _tool_context(self, thread_id: str, turn_id: str,
                      turn: TurnState | None) -> ToolContext | None:
        thread = self.threads.get(thread_id)
        connection_id = (turn.connection_id if turn is not None
                         and turn.connection_id is not None else
                         thread.connection_id if thread is not None else None)
        connection = self.connections.get(connection_id) if connection_id is not None else None
        if thread is None or connection is None:
            return None
        config = (turn.config if turn is not None else None) or thread.config
        effort = (config.reasoning_effort
                  or connection.catalog.defaults(config.model).reasoning_effort)
        return ToolContext(
            thread_id=thread_id,
            turn_id=turn_id,
            root_turn_id=(turn.root_turn_id if turn is not None else None) or turn_id,
            thread=thread.context,
            client=connection.client,
            runtime=connection.runtime,
            model=config.model,
            reasoning_effort=effort,
            sandbox_type=config.sandbox.type if config.sandbox is not None else None,
            reviews=turn.reviews if turn is not None else None,
        )

    def _spawned_agents(self, parent_id: str, item: ToolItemView) -> Sequence[AnyEvent]:
        """Agents a model spawned: codex 0.169.0 announces their threads only through the
        spawn's item (a v1 ``spawnAgent`` tool call, a v2 ``started`` agent activity), never
        by ``thread/started``. A wire approximation of codex's core-side fact."""
        config_changes: dict[str, str | None] = {}
        if item.type == "collabAgentToolCall" and item.tool == "spawnAgent":
            agents = list(item.receiver_thread_ids or [])
            forked_from, started_ms = None, item.completed_at_ms
        elif item.type == "subAgentActivity" and item.kind == "started" and item.agent_thread_id:
            # A v2 agent forks its parent's history (spawn_agent's default; the call's own
            # arguments are not on the wire).
            agents = [item.agent_thread_id]
            forked_from, started_ms = parent_id, item.started_at_ms
            # A v2 agent runs at the effort its spawn resolved; a v1 agent keeps the parent's.
            config_changes["reasoning_effort"] = item.reasoning_effort
        else:
            return NO_EVENTS
        parent = self.threads.get(parent_id)
        connection = self.connections.get(parent.connection_id) if parent is not None else None
        if parent is None or connection is None:
            self.stats.subagents_without_parent += len(agents)
            return NO_EVENTS
        events: list[AnyEvent] = []
        for agent_id in agents:
            if agent_id in self.threads:
                continue
            context = ThreadContext(
                session_id=parent.context.session_id,
                ephemeral=parent.context.ephemeral,
                thread_source="subagent",
                initialization_mode="new",
                subagent_source="thread_spawn",
                parent_thread_id=parent_id,
                multi_agent_version=parent.context.multi_agent_version,
            )
            model = item.model or parent.config.model
            state = ThreadState(
                connection_id=parent.connection_id,
                context=context,
                config=msgspec.structs.replace(parent.config, model=model, **config_changes),
                has_history=forked_from is not None,
            )
            self._remember_thread(agent_id, state)
            self._adopt_early_turns(agent_id, state)
            client = msgspec.structs.replace(connection.client, rpc_transport="in_process",
                                             experimental_api_enabled=None)
            events.append(ThreadInitialized(ThreadInitializedParams(
                thread_id=agent_id,
                session_id=context.session_id,
                app_server_client=client,
                runtime=connection.runtime,
                model=model or "",
                ephemeral=context.ephemeral,
                is_worktree=None,
                thread_source=context.thread_source,
                initialization_mode="new",
                subagent_source=context.subagent_source,
                parent_thread_id=parent_id,
                forked_from_thread_id=forked_from,
                created_at=(started_ms // 1000) if started_ms is not None else 0,
            )))
        return events

    def _on_approval_answered(self, fact: ApprovalAnswered) -> Sequence[AnyEvent]:
        params = fact.params
        thread = self.threads.get(params.thread_id) if params.thread_id else None
        connection = self.connections.get(thread.connection_id) if thread is not None else None
        if thread is None or connection is None or params.thread_id is None:
            self.stats.tool_events_without_context += 1
            return NO_EVENTS
        answered_ms = int(fact.observed_at * 1000)
        event = review_event(fact.method, fact.request_id, params, fact.decision, answered_ms,
                             thread.context, connection.client, connection.runtime)
        turn = self.turns.get(params.turn_id) if params.turn_id else None
        if turn is not None and params.item_id is not None:
            reviews = turn.reviews if turn.reviews is not None else {}
            turn.reviews = reviews
            tally = reviews.setdefault(params.item_id, ReviewTally())
            tally.count += 1
            tally.outcome = review_outcome(fact.decision)
        return (event,)

    def _on_compaction_started(self, fact: CompactionStarted) -> Sequence[AnyEvent]:
        turn = self.turns.get(fact.turn_id) if fact.turn_id else None
        thread = self.threads.get(fact.thread_id) if fact.thread_id else None
        if turn is not None:
            phase = ("standalone_turn" if turn.task == "compact"
                     else "mid_turn" if turn.sampled else "pre_turn")
            turn.compaction = CompactionState(
                phase, thread.context_tokens if thread is not None else None)
        return NO_EVENTS

    def _on_interrupt_answered(self, fact: InterruptAnswered) -> Sequence[AnyEvent]:
        turn_id = fact.params.turn_id
        turn = self.turns.get(turn_id) if turn_id else None
        if turn is not None:
            turn.note_interrupt(fact.requested_at)
        return NO_EVENTS

    def _turn_connection(self, turn: TurnState | None) -> int | None:
        if turn is None:
            return None
        if turn.connection_id is not None:
            return turn.connection_id
        thread = self.threads.get(turn.thread_id) if turn.thread_id is not None else None
        return thread.connection_id if thread is not None else None

    def _turn_event(self, turn: TurnState, completed: TurnView | None) -> AnyEvent | None:
        connection_id = self._turn_connection(turn)
        connection = self.connections.get(connection_id) if connection_id is not None else None
        thread_id = turn.thread_id
        if connection is None or thread_id is None:
            # "dropping turn analytics event: missing analytics context"
            self.stats.turns_without_context += 1
            return None
        thread = self.threads.get(thread_id)
        if thread is not None:
            context = thread.context
            if turn.config is None:
                # The turn started before its thread was announced (a v2 agent's first turn
                # runs before the spawn's item completes).
                turn.config = thread.config
        else:
            self.stats.turns_on_unseen_threads += 1
            context = ThreadContext(session_id=thread_id, ephemeral=False, thread_source=None,
                                    initialization_mode=UNSEEN_THREAD_MODE,
                                    subagent_source=None, parent_thread_id=None)
        return turn.to_event(thread_id=thread_id, thread=context, client=connection.client,
                             runtime=connection.runtime, completed=completed,
                             catalog=connection.catalog)

    def _incomplete_turn_event(self, turn: TurnState) -> Sequence[AnyEvent]:
        if turn.task in TASK_TURNS:
            return NO_EVENTS  # a review's inner turn never completes on the wire
        self.stats.turns_incomplete += 1
        event = self._turn_event(turn, None)
        return (event,) if event is not None else NO_EVENTS

    # -- steers --------------------------------------------------------------------------------

    def _on_steer_answered(self, fact: SteerAnswered) -> Sequence[AnyEvent]:
        params = fact.params
        if fact.error is None:
            accepted = fact.accepted_turn_id
            turn = self.turns.get(accepted) if accepted else None
            if turn is not None:
                turn.steer_count += 1
                turn.add_images(params.input)
            result, reason = "accepted", None
        else:
            try:
                reason = steer_rejection_reason(fact.error)
            except NoSteerEvent:
                return NO_EVENTS
            accepted, result = None, "rejected"
        connection = self.connections.get(fact.connection_id)
        thread = self.threads.get(params.thread_id) if params.thread_id else None
        if connection is None or thread is None or params.thread_id is None:
            self.stats.steers_without_context += 1
            return NO_EVENTS
        context = thread.context
        return (TurnSteerEvent(TurnSteerParams(
            thread_id=params.thread_id,
            session_id=context.session_id,
            expected_turn_id=params.expected_turn_id,
            accepted_turn_id=accepted,
            app_server_client=connection.client,
            runtime=connection.runtime,
            thread_source=context.thread_source,
            subagent_source=context.subagent_source,
            parent_thread_id=context.parent_thread_id,
            num_input_images=count_images(params.input),
            result=result,
            rejection_reason=reason,
            created_at=int(fact.requested_at),
        )),)
