"""The analytics events, wire-identical to what codex 0.169.0 sends.

Each event is ``{"event_type": ..., "event_params": {...}}``: a msgspec struct tagged by
``event_type`` with one field, ``event_params``. Fields are declared in codex's wire order
(msgspec encodes in declaration order) and optional values encode as ``null``, never omitted
(docs/analytics-events.md §2). No inheritance between params structs and no
``omit_defaults``: both reorder or drop keys (docs/python-stack.md §2.3).
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec

from .app_events import APP_EVENT_TYPES, AnyAppEvent
from .client_info import AppServerClient
from .images import ImagePreparation
from .runtime import RuntimeInfo
from .tool_events import TOOL_EVENT_TYPES, AnyToolEvent

JsonValue = Any


# --- codex_thread_initialized (docs/analytics-events.md §4) ----------------------------------


class ThreadInitializedParams(msgspec.Struct, frozen=True):
    thread_id: str
    session_id: str
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    model: str
    ephemeral: bool
    is_worktree: bool | None
    thread_source: str | None
    initialization_mode: str
    subagent_source: str | None
    parent_thread_id: str | None
    forked_from_thread_id: str | None
    created_at: int


class ThreadInitialized(msgspec.Struct, frozen=True, tag_field="event_type",
                        tag="codex_thread_initialized"):
    event_params: ThreadInitializedParams


# --- codex_turn_event (docs/analytics-events.md §5.2, 77 keys) -------------------------------


class TurnEventParams(msgspec.Struct, frozen=True):
    critical_path_status: str
    critical_path_duration_ms: int | None
    critical_path_inference_ms: int | None
    critical_path_sampling_ms: int | None
    critical_path_compaction_ms: int | None
    critical_path_auto_review_ms: int | None
    critical_path_auto_review_overhead_ms: int | None
    critical_path_user_wait_ms: int | None
    critical_path_tools_ms: int | None
    critical_path_overhead_ms: int | None
    critical_path_unknown_ms: int | None
    thread_id: str
    session_id: str
    turn_id: str
    active_plugin_ids_at_turn_start: list[str]
    voice_session_id: str | None
    root_turn_id: str | None
    turn_trigger: str | None
    codex_turn_source: str | None
    submission_type: str | None
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    ephemeral: bool
    thread_source: str | None
    initialization_mode: str
    subagent_source: str | None
    parent_thread_id: str | None
    model: str | None
    model_provider: str | None
    sandbox_policy: str | None
    reasoning_effort: str | None
    reasoning_summary: str | None
    service_tier: str | None
    approval_policy: str | None
    approvals_reviewer: str | None
    guardian_v2_enabled: bool
    multi_agent_version: str
    sandbox_network_access: bool | None
    collaboration_mode: str | None
    personality: str | None
    workspace_kind: str | None
    num_input_images: int
    image_preparations: list[ImagePreparation]
    is_first_turn: bool
    status: str | None
    explicit_client_interrupt_requested_at_ms: int | None
    turn_error: JsonValue
    codex_error_kind: str | None
    codex_error_http_status_code: int | None
    usage_limit_window_minutes: int | None
    steer_count: int | None
    total_tool_call_count: int | None
    shell_command_count: int | None
    file_change_count: int | None
    mcp_tool_call_count: int | None
    dynamic_tool_call_count: int | None
    subagent_tool_call_count: int | None
    web_search_count: int | None
    image_generation_count: int | None
    input_tokens: int | None
    cached_input_tokens: int | None
    cache_write_input_tokens: int | None
    output_tokens: int | None
    reasoning_output_tokens: int | None
    total_tokens: int | None
    before_first_sampling_ms: int
    sampling_ms: int
    compaction_ms: int
    between_sampling_overhead_ms: int
    tool_blocking_ms: int
    after_last_sampling_ms: int
    sampling_request_count: int
    sampling_retry_count: int
    tools_change_count: int
    duration_ms: int | None
    started_at: int | None
    completed_at: int


class TurnEvent(msgspec.Struct, frozen=True, tag_field="event_type", tag="codex_turn_event"):
    event_params: TurnEventParams


# --- codex_turn_steer_event (docs/analytics-events.md §7) ------------------------------------


class TurnSteerParams(msgspec.Struct, frozen=True):
    thread_id: str
    session_id: str
    expected_turn_id: str | None
    accepted_turn_id: str | None
    app_server_client: AppServerClient
    runtime: RuntimeInfo
    thread_source: str | None
    subagent_source: str | None
    parent_thread_id: str | None
    num_input_images: int
    result: str
    rejection_reason: str | None
    created_at: int


class TurnSteerEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                     tag="codex_turn_steer_event"):
    event_params: TurnSteerParams


# Skill, app, plugin and thread-archive events are in app_events.py.
# Tool events and the accepted-line fingerprints are in tool_events.py.
AnyEvent: TypeAlias = (
    ThreadInitialized | TurnEvent | TurnSteerEvent | AnyAppEvent | AnyToolEvent
)

EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    ThreadInitialized, TurnEvent, TurnSteerEvent, *APP_EVENT_TYPES, *TOOL_EVENT_TYPES
)

_encoder = msgspec.json.Encoder()


def encode_event(event: AnyEvent) -> bytes:
    """Compact JSON, exactly as codex puts it in ``{"events":[...]}``."""
    return _encoder.encode(event)


def event_type_of(event: AnyEvent) -> str:
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag
