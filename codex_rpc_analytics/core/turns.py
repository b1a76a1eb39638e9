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
from .error_kinds import NO_ERROR, turn_error_kind
from .events import TurnEvent, TurnEventParams
from .images import ImagePreparation, data_url_size, prepared_size
from .model_catalog import ModelCatalog
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

# ``to_event`` passes the event's 77 fields by position, in this order: on CPython 3.11 a call
# with 77 keywords costs ~9 µs (the keywords are matched one by one), a third of what the
# whole turn costs to analyse. A change to ``TurnEventParams``' fields must change both; the
# check below makes a mismatch fail at import instead of shifting values between fields.
_FIELD_ORDER = (
    "critical_path_status", "critical_path_duration_ms", "critical_path_inference_ms",
    "critical_path_sampling_ms", "critical_path_compaction_ms", "critical_path_auto_review_ms",
    "critical_path_auto_review_overhead_ms", "critical_path_user_wait_ms",
    "critical_path_tools_ms", "critical_path_overhead_ms", "critical_path_unknown_ms",
    "thread_id", "session_id", "turn_id", "active_plugin_ids_at_turn_start",
    "voice_session_id", "root_turn_id", "turn_trigger", "codex_turn_source", "submission_type",
    "app_server_client", "runtime", "ephemeral", "thread_source", "initialization_mode",
    "subagent_source", "parent_thread_id", "model", "model_provider", "sandbox_policy",
    "reasoning_effort", "reasoning_summary", "service_tier", "approval_policy",
    "approvals_reviewer", "guardian_v2_enabled", "multi_agent_version",
    "sandbox_network_access", "collaboration_mode", "personality", "workspace_kind",
    "num_input_images", "image_preparations", "is_first_turn", "status",
    "explicit_client_interrupt_requested_at_ms", "turn_error", "codex_error_kind",
    "codex_error_http_status_code", "usage_limit_window_minutes", "steer_count",
    "total_tool_call_count", "shell_command_count", "file_change_count", "mcp_tool_call_count",
    "dynamic_tool_call_count", "subagent_tool_call_count", "web_search_count",
    "image_generation_count", "input_tokens", "cached_input_tokens",
    "cache_write_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens",
    "before_first_sampling_ms", "sampling_ms", "compaction_ms", "between_sampling_overhead_ms",
    "tool_blocking_ms", "after_last_sampling_ms", "sampling_request_count",
    "sampling_retry_count", "tools_change_count", "duration_ms", "started_at", "completed_at",
)
if TurnEventParams.__struct_fields__ != _FIELD_ORDER:
    raise ImportError("turns.TurnState.to_event passes TurnEventParams' fields by position: "
                      "update it and turns._FIELD_ORDER to the struct's fields")


def count_images(inputs: list[UserInputView]) -> int:
    return sum(item.type in IMAGE_INPUT_TYPES for item in inputs)


def inline_image_sizes(inputs: list[UserInputView]) -> list[tuple[int, int]]:
    """Sizes of the images sent inline (``data:`` URLs); codex reads the others itself."""
    sizes = []
    for item in inputs:
        if item.type == "image" and item.url is not None:
            size = data_url_size(item.url)
            if size is not None:
                sizes.append(size)
    return sizes


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
    # Fixed when the thread starts (from its model's catalog entry), kept by resumes and forks.
    multi_agent_version: str | None = None


# What codex runs as a task of its own rather than as a user turn; it posts no turn event.
TASK_TURNS = frozenset(("review", "compact"))
ZERO_TOKENS = TokenBreakdown()


class ReviewTally(msgspec.Struct):
    """The approval reviews of one tool item: how many, and how the last one ended."""

    count: int = 0
    outcome: str = "unknown"  # codex's final_approval_outcome


class CompactionState(msgspec.Struct):
    phase: str  # "pre_turn" (before the turn sampled), "mid_turn", "standalone_turn"
    context_tokens_before: int | None
    context_tokens_after: int | None = None


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
    task: str | None = None  # "review" or "compact" for turns codex runs as tasks
    diff: str | None = None  # the latest turn/diff/updated (accepted line counts)
    image_sizes: list[tuple[int, int]] | None = None  # inline images of the turn's inputs
    reviews: dict[str, ReviewTally] | None = None  # approvals answered, by item id
    sampled: bool = False  # a token usage update arrived for the turn
    compaction: CompactionState | None = None  # a compaction under way in the turn
    previous_turn_model: str | None = None  # the thread's model for its turn before this one
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

    def add_images(self, inputs: list[UserInputView]) -> None:
        sizes = inline_image_sizes(inputs)
        if sizes:
            self.image_sizes = (self.image_sizes or []) + sizes

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
        catalog: ModelCatalog,
    ) -> TurnEvent:
        """``completed`` is the turn of ``turn/completed``; ``None`` for a turn that never
        completed (flushed when its connection closed or evicted)."""
        config = self.config or TurnConfig()
        error = completed.error if completed is not None else None
        error_info = error.codex_error_info if error is not None else None
        error_kind = (turn_error_kind(error_info, error.message) if error is not None
                      else NO_ERROR)
        status = completed.status if completed is not None else None
        tokens = self.token_usage()
        if status == "interrupted":
            tokens = None  # codex accounts no usage for an interrupted turn, even if sampled
        elif tokens is None and status in ("completed", "failed"):
            # A finished turn whose model reported no usage (it failed before sampling):
            # codex accounts zeros.
            tokens = ZERO_TOKENS
        tool_total = (self.shell_command_count + self.file_change_count
                      + self.mcp_tool_call_count + self.dynamic_tool_call_count
                      + self.subagent_tool_call_count + self.web_search_count
                      + self.image_generation_count)
        completed_at = completed.completed_at if completed is not None else None
        service_tier = self.service_tier_for_turn or config.service_tier
        model_defaults = catalog.defaults(config.model)
        multi_agent_version = thread.multi_agent_version or model_defaults.multi_agent_version
        budget = model_defaults.image_budget
        preparations = [
            ImagePreparation("user", None, budget.detail, width, height,
                             *prepared_size(width, height, budget))
            for width, height in self.image_sizes or ()
        ]
        return TurnEvent(TurnEventParams(  # by position, in _FIELD_ORDER
            "disabled",  # critical_path_status
            None,  # critical_path_duration_ms
            None,  # critical_path_inference_ms
            None,  # critical_path_sampling_ms
            None,  # critical_path_compaction_ms
            None,  # critical_path_auto_review_ms
            None,  # critical_path_auto_review_overhead_ms
            None,  # critical_path_user_wait_ms
            None,  # critical_path_tools_ms
            None,  # critical_path_overhead_ms
            None,  # critical_path_unknown_ms
            thread_id,  # thread_id
            thread.session_id,  # session_id
            self.turn_id,  # turn_id
            [],  # active_plugin_ids_at_turn_start
            None,  # voice_session_id
            # root_turn_id:
            (completed.root_turn_id if completed is not None
             and completed.root_turn_id is not None else self.root_turn_id),
            self.turn_trigger,  # turn_trigger
            None,  # codex_turn_source
            None,  # submission_type
            client,  # app_server_client
            runtime,  # runtime
            thread.ephemeral,  # ephemeral
            thread.thread_source,  # thread_source
            thread.initialization_mode,  # initialization_mode
            thread.subagent_source,  # subagent_source
            thread.parent_thread_id,  # parent_thread_id
            config.model,  # model
            config.model_provider,  # model_provider
            config.sandbox_policy_name(),  # sandbox_policy
            config.reasoning_effort,  # reasoning_effort
            config.summary_name(catalog),  # reasoning_summary
            config.service_tier_name(service_tier),  # service_tier
            config.approval_policy_name(),  # approval_policy
            config.approvals_reviewer,  # approvals_reviewer
            False,  # guardian_v2_enabled
            multi_agent_version,  # multi_agent_version
            config.sandbox_network_access(),  # sandbox_network_access
            config.collaboration_mode_name(),  # collaboration_mode
            config.personality_name(),  # personality
            None,  # workspace_kind
            self.num_input_images,  # num_input_images
            preparations,  # image_preparations
            self.is_first_turn,  # is_first_turn
            None if status == "inProgress" else status,  # status
            self.interrupt_requested_at_ms,  # explicit_client_interrupt_requested_at_ms
            error_info,  # turn_error
            error_kind.kind,  # codex_error_kind
            error_kind.http_status_code,  # codex_error_http_status_code
            None,  # usage_limit_window_minutes
            self.steer_count,  # steer_count
            tool_total,  # total_tool_call_count
            self.shell_command_count,  # shell_command_count
            self.file_change_count,  # file_change_count
            self.mcp_tool_call_count,  # mcp_tool_call_count
            self.dynamic_tool_call_count,  # dynamic_tool_call_count
            self.subagent_tool_call_count,  # subagent_tool_call_count
            self.web_search_count,  # web_search_count
            self.image_generation_count,  # image_generation_count
            tokens.input_tokens if tokens else None,  # input_tokens
            tokens.cached_input_tokens if tokens else None,  # cached_input_tokens
            tokens.cache_write_input_tokens if tokens else None,  # cache_write_input_tokens
            tokens.output_tokens if tokens else None,  # output_tokens
            tokens.reasoning_output_tokens if tokens else None,  # reasoning_output_tokens
            tokens.total_tokens if tokens else None,  # total_tokens
            0,  # before_first_sampling_ms
            0,  # sampling_ms
            0,  # compaction_ms
            0,  # between_sampling_overhead_ms
            0,  # tool_blocking_ms
            0,  # after_last_sampling_ms
            0,  # sampling_request_count
            0,  # sampling_retry_count
            0,  # tools_change_count
            _non_negative(completed.duration_ms) if completed is not None else None,  # duration_ms
            self.started_at,  # started_at
            completed_at if completed_at is not None and completed_at >= 0 else 0,  # completed_at
        ))
