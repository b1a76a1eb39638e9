"""The per-tool-call events codex 0.169.0 posts, and the review and compaction events.

Observed on the real binary (docs/conformance.md): one event per ``commandExecution``,
``fileChange``, ``mcpToolCall``, ``dynamicToolCall``, ``collabAgentToolCall`` /
``subAgentActivity`` (a spawned agent), ``webSearch`` and ``imageGeneration`` item, plus
``codex_accepted_line_fingerprints`` after a turn that changed files; ``codex_review_event``
when the user answers an approval request, ``codex_compaction_event`` per compaction. Keys
are in codex's wire order; every params struct spells out the shared base keys (no
inheritance: the command event puts three keys before them).
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from .client_info import AppServerClient
from .runtime import RuntimeInfo


class CommandExecutionParams(msgspec.Struct, frozen=True):
    sandbox_backend: str | None
    model_slug: str | None
    reasoning_effort: str | None
    thread_id: str
    session_id: str
    turn_id: str
    root_turn_id: str | None
    item_id: str
    cell_id: str | None
    parent_call_id: str | None
    originating_response_id: str | None
    subsequent_response_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    tool_name: str | None
    tool_event_type: str | None
    started_at_ms: int | None
    completed_at_ms: int | None
    duration_ms: int | None
    execution_duration_ms: int | None
    review_count: int
    guardian_review_count: int
    user_review_count: int
    final_approval_outcome: str
    terminal_status: str | None
    failure_kind: str | None
    requested_additional_permissions: bool
    requested_network_access: bool
    plugin_id: str | None
    script_path: str | None
    command_execution_source: str | None
    exit_code: int | None
    command_total_action_count: int
    command_read_action_count: int
    command_list_files_action_count: int
    command_search_action_count: int
    command_unknown_action_count: int


class CommandExecutionEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                            tag="codex_command_execution_event"):
    event_params: CommandExecutionParams


class FileChangeParams(msgspec.Struct, frozen=True):
    thread_id: str
    session_id: str
    turn_id: str
    root_turn_id: str | None
    item_id: str
    cell_id: str | None
    parent_call_id: str | None
    originating_response_id: str | None
    subsequent_response_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    tool_name: str | None
    tool_event_type: str | None
    started_at_ms: int | None
    completed_at_ms: int | None
    duration_ms: int | None
    execution_duration_ms: int | None
    review_count: int
    guardian_review_count: int
    user_review_count: int
    final_approval_outcome: str
    terminal_status: str | None
    failure_kind: str | None
    requested_additional_permissions: bool
    requested_network_access: bool
    file_change_count: int
    file_add_count: int
    file_update_count: int
    file_delete_count: int
    file_move_count: int


class FileChangeEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                      tag="codex_file_change_event"):
    event_params: FileChangeParams


class McpToolCallParams(msgspec.Struct, frozen=True):
    thread_id: str
    session_id: str
    turn_id: str
    root_turn_id: str | None
    item_id: str
    cell_id: str | None
    parent_call_id: str | None
    originating_response_id: str | None
    subsequent_response_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    tool_name: str | None
    tool_event_type: str | None
    started_at_ms: int | None
    completed_at_ms: int | None
    duration_ms: int | None
    execution_duration_ms: int | None
    review_count: int
    guardian_review_count: int
    user_review_count: int
    final_approval_outcome: str
    terminal_status: str | None
    failure_kind: str | None
    requested_additional_permissions: bool
    requested_network_access: bool
    mcp_server_name: str | None
    mcp_tool_name: str | None
    mcp_error_present: bool
    plugin_id: str | None
    connector_id: str | None
    voice_session_id: str | None
    elicitation_type: str | None


class McpToolCallEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                       tag="codex_mcp_tool_call_event"):
    event_params: McpToolCallParams


class DynamicToolCallParams(msgspec.Struct, frozen=True):
    thread_id: str
    session_id: str
    turn_id: str
    root_turn_id: str | None
    item_id: str
    cell_id: str | None
    parent_call_id: str | None
    originating_response_id: str | None
    subsequent_response_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    tool_name: str | None
    tool_event_type: str | None
    started_at_ms: int | None
    completed_at_ms: int | None
    duration_ms: int | None
    execution_duration_ms: int | None
    review_count: int
    guardian_review_count: int
    user_review_count: int
    final_approval_outcome: str
    terminal_status: str | None
    failure_kind: str | None
    requested_additional_permissions: bool
    requested_network_access: bool
    dynamic_tool_name: str | None
    success: bool | None
    output_content_item_count: int | None
    output_text_item_count: int | None
    output_image_item_count: int | None
    output_audio_item_count: int | None


class DynamicToolCallEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                           tag="codex_dynamic_tool_call_event"):
    event_params: DynamicToolCallParams


class CollabAgentToolCallParams(msgspec.Struct, frozen=True):
    thread_id: str
    session_id: str
    turn_id: str
    root_turn_id: str | None
    item_id: str
    cell_id: str | None
    parent_call_id: str | None
    originating_response_id: str | None
    subsequent_response_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    tool_name: str | None
    tool_event_type: str | None
    started_at_ms: int | None
    completed_at_ms: int | None
    duration_ms: int | None
    execution_duration_ms: int | None
    review_count: int
    guardian_review_count: int
    user_review_count: int
    final_approval_outcome: str
    terminal_status: str | None
    failure_kind: str | None
    requested_additional_permissions: bool
    requested_network_access: bool
    sender_thread_id: str | None
    receiver_thread_count: int
    receiver_thread_ids: list[str]
    requested_model: str | None
    requested_reasoning_effort: str | None
    agent_state_count: int
    completed_agent_count: int
    failed_agent_count: int


class CollabAgentToolCallEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                               tag="codex_collab_agent_tool_call_event"):
    event_params: CollabAgentToolCallParams


class WebSearchParams(msgspec.Struct, frozen=True):
    thread_id: str
    session_id: str
    turn_id: str
    root_turn_id: str | None
    item_id: str
    cell_id: str | None
    parent_call_id: str | None
    originating_response_id: str | None
    subsequent_response_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    tool_name: str | None
    tool_event_type: str | None
    started_at_ms: int | None
    completed_at_ms: int | None
    duration_ms: int | None
    execution_duration_ms: int | None
    review_count: int
    guardian_review_count: int
    user_review_count: int
    final_approval_outcome: str
    terminal_status: str | None
    failure_kind: str | None
    requested_additional_permissions: bool
    requested_network_access: bool
    web_search_action: str | None
    query_present: bool
    query_count: int


class WebSearchEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                     tag="codex_web_search_event"):
    event_params: WebSearchParams


class ImageGenerationParams(msgspec.Struct, frozen=True):
    thread_id: str
    session_id: str
    turn_id: str
    root_turn_id: str | None
    item_id: str
    cell_id: str | None
    parent_call_id: str | None
    originating_response_id: str | None
    subsequent_response_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    tool_name: str | None
    tool_event_type: str | None
    started_at_ms: int | None
    completed_at_ms: int | None
    duration_ms: int | None
    execution_duration_ms: int | None
    review_count: int
    guardian_review_count: int
    user_review_count: int
    final_approval_outcome: str
    terminal_status: str | None
    failure_kind: str | None
    requested_additional_permissions: bool
    requested_network_access: bool
    revised_prompt_present: bool
    saved_path_present: bool
    transparent_background: bool | None
    imagegen_request_id: str | None
    generation_id: str | None


class ImageGenerationEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                           tag="codex_image_generation_event"):
    event_params: ImageGenerationParams


class AcceptedLineFingerprintsParams(msgspec.Struct, frozen=True):
    # The event's own name again, dotted, inside its params (as codex sends it).
    event_type: str
    turn_id: str
    thread_id: str
    product_surface: str
    model_slug: str | None
    completed_at: int
    repo_hash: str | None
    accepted_added_lines: int
    accepted_deleted_lines: int
    line_fingerprints: list[str]


class AcceptedLineFingerprintsEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                                    tag="codex_accepted_line_fingerprints"):
    event_params: AcceptedLineFingerprintsParams


# --- codex_review_event: a user's answer to an approval request ------------------------------


class ReviewParams(msgspec.Struct, frozen=True):
    thread_id: str
    turn_id: str | None
    item_id: str | None
    review_id: str
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    subject_kind: str
    subject_name: str
    reviewer: str
    trigger: str
    status: str
    resolution: str
    started_at_ms: int | None
    completed_at_ms: int
    duration_ms: int | None


class ReviewEvent(msgspec.Struct, frozen=True, tag_field="event_type", tag="codex_review_event"):
    event_params: ReviewParams


# --- codex_compaction_event ------------------------------------------------------------------


class CompactionParams(msgspec.Struct, frozen=True):
    thread_id: str
    session_id: str
    turn_id: str
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    trigger: str
    reason: str
    implementation: str
    phase: str
    strategy: str
    status: str
    voice_session_id: str | None
    codex_error_kind: str | None
    codex_error_http_status_code: int | None
    usage_limit_window_minutes: int | None
    active_context_tokens_before: int | None
    active_context_tokens_after: int | None
    retained_image_count: int | None
    compaction_summary_tokens: int | None
    cached_input_tokens: int | None
    cache_write_input_tokens: int | None
    started_at: int
    completed_at: int
    duration_ms: int | None


class CompactionEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                      tag="codex_compaction_event"):
    event_params: CompactionParams


AnyToolEvent: TypeAlias = (
    CommandExecutionEvent
    | FileChangeEvent
    | McpToolCallEvent
    | DynamicToolCallEvent
    | CollabAgentToolCallEvent
    | WebSearchEvent
    | ImageGenerationEvent
    | AcceptedLineFingerprintsEvent
    | ReviewEvent
    | CompactionEvent
)

TOOL_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    CommandExecutionEvent,
    FileChangeEvent,
    McpToolCallEvent,
    DynamicToolCallEvent,
    CollabAgentToolCallEvent,
    WebSearchEvent,
    ImageGenerationEvent,
    AcceptedLineFingerprintsEvent,
    ReviewEvent,
    CompactionEvent,
)
