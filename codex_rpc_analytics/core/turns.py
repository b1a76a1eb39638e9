"""Per-turn state and the ``codex_turn_event`` built from it (docs/analytics-events.md §5).

A turn's state is created by whichever of its facts comes first (the ``turn/start`` result
or ``turn/started``), collects steers, tool items, token usage and interrupts, and becomes
one event at ``turn/completed``, or an incomplete one (``status: null``) when its connection
closes or the bounded turn map has to let it go.
"""

from __future__ import annotations

import msgspec

from .bounded import BoundedMap
from .client_info import AppServerClient
from .error_kinds import codex_error_http_status, codex_error_kind
from .events import TurnEvent, TurnEventParams
from .runtime import RuntimeInfo
from .turn_config import TurnConfig
from .views import ItemView, TokenBreakdown, TurnView, UserInputView

IMAGE_INPUT_TYPES = frozenset(("image", "localImage"))

# item.type on item/completed -> the counter it increments (§5.4).
TOOL_COUNTERS = {
    "commandExecution": "shell_command_count",
    "fileChange": "file_change_count",
    "mcpToolCall": "mcp_tool_call_count",
    "dynamicToolCall": "dynamic_tool_call_count",
    "collabAgentToolCall": "subagent_tool_call_count",
    "subAgentActivity": "subagent_tool_call_count",
    "webSearch": "web_search_count",
    "imageGeneration": "image_generation_count",
}
SUBAGENT_ITEM_TYPES = frozenset(("collabAgentToolCall", "subAgentActivity"))
MAX_SUBAGENT_ITEMS_PER_TURN = 1024


def count_images(inputs: list[UserInputView]) -> int:
    return sum(item.type in IMAGE_INPUT_TYPES for item in inputs)


def _non_negative(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


class ThreadContext(msgspec.Struct, frozen=True):
    """The thread metadata a turn event copies (§5.2 rows 13, 23-27)."""

    session_id: str
    ephemeral: bool
    thread_source: str | None
    initialization_mode: str
    subagent_source: str | None
    parent_thread_id: str | None


class TurnState(msgspec.Struct):
    turn_id: str
    thread_id: str | None
    connection_id: int | None  # the connection that sent turn/start, when seen
    config: TurnConfig | None
    is_first_turn: bool
    token_baseline: TokenBreakdown | None
    num_input_images: int = 0
    root_turn_id: str | None = None
    turn_trigger: str | None = None
    service_tier_for_turn: str | None = None
    started_at: int | None = None
    steer_count: int = 0
    interrupt_requested_at_ms: int | None = None
    token_total: TokenBreakdown | None = None
    shell_command_count: int = 0
    file_change_count: int = 0
    mcp_tool_call_count: int = 0
    dynamic_tool_call_count: int = 0
    subagent_tool_call_count: int = 0
    web_search_count: int = 0
    image_generation_count: int = 0
    subagent_items: BoundedMap[str, None] | None = None

    def count_item(self, item: ItemView) -> None:
        counter = TOOL_COUNTERS.get(item.type or "")
        if counter is None:
            return
        if item.type in SUBAGENT_ITEM_TYPES:
            if item.type == "subAgentActivity" and item.kind == "completed":
                return
            if self.subagent_items is None:
                self.subagent_items = BoundedMap(MAX_SUBAGENT_ITEMS_PER_TURN)
            key = item.id or ""
            if key in self.subagent_items:
                return
            self.subagent_items.put(key, None)
        setattr(self, counter, getattr(self, counter) + 1)

    def note_interrupt(self, requested_at: float) -> None:
        at_ms = int(requested_at * 1000)
        if self.interrupt_requested_at_ms is None or at_ms < self.interrupt_requested_at_ms:
            self.interrupt_requested_at_ms = at_ms

    def token_usage(self) -> TokenBreakdown | None:
        """The turn's delta of the thread's cumulative usage, per field, clamped at 0."""
        total = self.token_total
        if total is None:
            return None
        base = self.token_baseline or TokenBreakdown()
        return TokenBreakdown(
            total_tokens=max(total.total_tokens - base.total_tokens, 0),
            input_tokens=max(total.input_tokens - base.input_tokens, 0),
            cached_input_tokens=max(total.cached_input_tokens - base.cached_input_tokens, 0),
            cache_write_input_tokens=max(
                total.cache_write_input_tokens - base.cache_write_input_tokens, 0),
            output_tokens=max(total.output_tokens - base.output_tokens, 0),
            reasoning_output_tokens=max(
                total.reasoning_output_tokens - base.reasoning_output_tokens, 0),
        )

    def to_event(
        self,
        *,
        thread_id: str,
        thread: ThreadContext,
        client: AppServerClient,
        runtime: RuntimeInfo,
        completed: TurnView | None,
    ) -> TurnEvent:
        """``completed`` is the turn of ``turn/completed``; ``None`` for a turn that never
        completed (flushed when its connection closed or evicted)."""
        config = self.config or TurnConfig()
        tokens = self.token_usage()
        error = completed.error if completed is not None else None
        error_info = error.codex_error_info if error is not None else None
        status = completed.status if completed is not None else None
        tool_total = (self.shell_command_count + self.file_change_count
                      + self.mcp_tool_call_count + self.dynamic_tool_call_count
                      + self.subagent_tool_call_count + self.web_search_count
                      + self.image_generation_count)
        completed_at = completed.completed_at if completed is not None else None
        service_tier = self.service_tier_for_turn or config.service_tier
        return TurnEvent(TurnEventParams(
            critical_path_status="disabled",
            critical_path_duration_ms=None,
            critical_path_inference_ms=None,
            critical_path_sampling_ms=None,
            critical_path_compaction_ms=None,
            critical_path_auto_review_ms=None,
            critical_path_auto_review_overhead_ms=None,
            critical_path_user_wait_ms=None,
            critical_path_tools_ms=None,
            critical_path_overhead_ms=None,
            critical_path_unknown_ms=None,
            thread_id=thread_id,
            session_id=thread.session_id,
            turn_id=self.turn_id,
            active_plugin_ids_at_turn_start=[],
            voice_session_id=None,
            root_turn_id=(completed.root_turn_id if completed is not None
                          and completed.root_turn_id is not None else self.root_turn_id),
            turn_trigger=self.turn_trigger,
            codex_turn_source=None,
            submission_type=None,
            app_server_client=client,
            runtime=runtime,
            ephemeral=thread.ephemeral,
            thread_source=thread.thread_source,
            initialization_mode=thread.initialization_mode,
            subagent_source=thread.subagent_source,
            parent_thread_id=thread.parent_thread_id,
            model=config.model,
            model_provider=config.model_provider,
            sandbox_policy=config.sandbox_policy_name(),
            reasoning_effort=config.reasoning_effort,
            reasoning_summary=config.summary_name(),
            service_tier=service_tier if service_tier is not None else "default",
            approval_policy=config.approval_policy_name(),
            approvals_reviewer=config.approvals_reviewer,
            guardian_v2_enabled=False,
            multi_agent_version="v2",
            sandbox_network_access=config.sandbox_network_access(),
            collaboration_mode=config.collaboration_mode_name(),
            personality=config.personality_name(),
            workspace_kind=None,
            num_input_images=self.num_input_images,
            image_preparations=[],
            is_first_turn=self.is_first_turn,
            status=None if status == "inProgress" else status,
            explicit_client_interrupt_requested_at_ms=self.interrupt_requested_at_ms,
            turn_error=error_info,
            codex_error_kind=codex_error_kind(error_info),
            codex_error_http_status_code=codex_error_http_status(error_info),
            usage_limit_window_minutes=None,
            steer_count=self.steer_count,
            total_tool_call_count=tool_total,
            shell_command_count=self.shell_command_count,
            file_change_count=self.file_change_count,
            mcp_tool_call_count=self.mcp_tool_call_count,
            dynamic_tool_call_count=self.dynamic_tool_call_count,
            subagent_tool_call_count=self.subagent_tool_call_count,
            web_search_count=self.web_search_count,
            image_generation_count=self.image_generation_count,
            input_tokens=tokens.input_tokens if tokens else None,
            cached_input_tokens=tokens.cached_input_tokens if tokens else None,
            cache_write_input_tokens=tokens.cache_write_input_tokens if tokens else None,
            output_tokens=tokens.output_tokens if tokens else None,
            reasoning_output_tokens=tokens.reasoning_output_tokens if tokens else None,
            total_tokens=tokens.total_tokens if tokens else None,
            before_first_sampling_ms=0,
            sampling_ms=0,
            compaction_ms=0,
            between_sampling_overhead_ms=0,
            tool_blocking_ms=0,
            after_last_sampling_ms=0,
            sampling_request_count=0,
            sampling_retry_count=0,
            tools_change_count=0,
            duration_ms=_non_negative(completed.duration_ms) if completed is not None else None,
            started_at=self.started_at,
            completed_at=completed_at if completed_at is not None and completed_at >= 0 else 0,
        ))
