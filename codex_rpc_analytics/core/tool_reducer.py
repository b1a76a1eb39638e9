"""Tool events from completed tool items: what codex 0.169.0 posts per tool call.

Pure functions of one ``item/completed`` (decoded as :class:`~.item_views.ToolItemView`) and
the turn it belongs to (:class:`ToolContext`, filled in by the reducer). Each rule below was
checked against the real binary in the scenario matrix; docs/conformance.md lists, key by key,
what is taken from the item, what is derived and what never reaches the wire (the model's
response ids, a code-mode cell's id and call id).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from .client_info import AppServerClient
from .item_views import AgentStateView, ToolItemView
from .runtime import RuntimeInfo
from .tool_events import (
    AcceptedLineFingerprintsEvent,
    AcceptedLineFingerprintsParams,
    AnyToolEvent,
    CollabAgentToolCallEvent,
    CollabAgentToolCallParams,
    CommandExecutionEvent,
    CommandExecutionParams,
    CompactionEvent,
    CompactionParams,
    DynamicToolCallEvent,
    DynamicToolCallParams,
    FileChangeEvent,
    FileChangeParams,
    ImageGenerationEvent,
    ImageGenerationParams,
    McpToolCallEvent,
    McpToolCallParams,
    ReviewEvent,
    ReviewParams,
    WebSearchEvent,
    WebSearchParams,
)
from .turns import CompactionState, ReviewTally, ThreadContext
from .views import ApprovalRequestParams

# A tool called from inside a code-mode `exec` cell has an item id of this shape; the cell
# itself is not an item on the wire.
CODE_MODE_CALL_PREFIX = "exec-"
_COMMAND_TOOL_NAMES = {
    "unifiedExecStartup": "unified_exec",
    "unifiedExecInteraction": "unified_exec",
    "agent": "shell",  # a command the user declined never reached unified exec
}
# A declined tool call ends "rejected" for codex; other statuses pass through, snake_case.
_TERMINAL_STATUSES = {"declined": "rejected"}
_FAILURE_KINDS = {"failed": "tool_error", "rejected": "approval_denied"}
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")
_SANDBOXES_WITHOUT_BACKEND = frozenset(("dangerFullAccess", "externalSandbox"))
# The sandbox codex runs a command in, per platform (linux observed; the others as codex's
# platform backends are named).
_PLATFORM_SANDBOX = {"linux": "seccomp", "macos": "seatbelt", "windows": "windows_sandbox"}


def snake(name: str | None) -> str | None:
    return None if name is None else _CAMEL_BOUNDARY.sub("_", name).lower()


class ToolContext(msgspec.Struct, frozen=True):
    """What a tool event copies from its thread, turn and connection."""

    thread_id: str
    turn_id: str
    root_turn_id: str | None
    thread: ThreadContext
    client: AppServerClient
    runtime: RuntimeInfo
    model: str | None
    reasoning_effort: str | None  # the effective effort: configured, else the model's default
    sandbox_type: str | None  # the turn's SandboxPolicy type
    reviews: dict[str, ReviewTally] | None = None  # approvals answered in the turn, by item


class _Base(msgspec.Struct, frozen=True):
    """The shared keys, in wire order, as keyword arguments for every params struct."""

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


def _base(item: ToolItemView, ctx: ToolContext, tool_name: str | None,
          execution_duration_ms: int | None, *, model_call: bool = True) -> dict[str, Any]:
    started, completed = item.started_at_ms, item.completed_at_ms
    duration = completed - started if started is not None and completed is not None else None
    status = snake(item.status) if item.status is not None else "completed"
    status = _TERMINAL_STATUSES.get(status or "", status)
    review = (ctx.reviews or {}).get(item.id or "")
    nested = (item.id or "").startswith(CODE_MODE_CALL_PREFIX)
    event_type = None if not model_call else ("inner_tool_call" if nested else "model_tool_call")
    base = _Base(
        thread_id=ctx.thread_id,
        session_id=ctx.thread.session_id,
        turn_id=ctx.turn_id,
        root_turn_id=ctx.root_turn_id,
        item_id=item.id or "",
        cell_id=None,  # not on the wire
        parent_call_id=None,  # not on the wire
        originating_response_id=None,  # not on the wire
        subsequent_response_id=None,  # not on the wire
        app_server_client=ctx.client,
        runtime=ctx.runtime,
        thread_source=ctx.thread.thread_source,
        subagent_source=ctx.thread.subagent_source,
        parent_thread_id=ctx.thread.parent_thread_id,
        tool_name=tool_name,
        tool_event_type=event_type,
        started_at_ms=started,
        completed_at_ms=completed,
        duration_ms=duration,
        execution_duration_ms=execution_duration_ms,
        review_count=review.count if review is not None else 0,
        guardian_review_count=0,
        user_review_count=review.count if review is not None else 0,
        final_approval_outcome=review.outcome if review is not None else "unknown",
        terminal_status=status,
        failure_kind=_FAILURE_KINDS.get(status or ""),
        requested_additional_permissions=False,
        requested_network_access=False,
    )
    return msgspec.structs.asdict(base)


def _elapsed(item: ToolItemView) -> int | None:
    if item.started_at_ms is None or item.completed_at_ms is None:
        return None
    return item.completed_at_ms - item.started_at_ms


def _command(item: ToolItemView, ctx: ToolContext) -> AnyToolEvent:
    actions = [action.type for action in item.command_actions or []]
    sandbox = ctx.sandbox_type
    review = (ctx.reviews or {}).get(item.id or "")
    backend: str | None
    if item.status == "declined":
        backend = None  # it never ran
    elif (sandbox is None or sandbox in _SANDBOXES_WITHOUT_BACKEND
          or (review is not None and review.outcome.startswith("user_approved"))):
        backend = "none"  # no sandbox, or the user let it run outside of it
    else:
        backend = _PLATFORM_SANDBOX.get(ctx.runtime.runtime_os)
    return CommandExecutionEvent(CommandExecutionParams(
        sandbox_backend=backend,
        model_slug=ctx.model,
        reasoning_effort=ctx.reasoning_effort,
        **_base(item, ctx, _COMMAND_TOOL_NAMES.get(item.source or "", snake(item.source)),
                item.duration_ms),
        plugin_id=item.plugin_id,
        script_path=item.script_path,
        command_execution_source=item.source,
        exit_code=item.exit_code,
        command_total_action_count=len(actions),
        command_read_action_count=actions.count("read"),
        command_list_files_action_count=actions.count("listFiles"),
        command_search_action_count=actions.count("search"),
        command_unknown_action_count=actions.count("unknown"),
    ))


def _file_change(item: ToolItemView, ctx: ToolContext) -> AnyToolEvent:
    kinds = [change.kind for change in item.changes or [] if change.kind is not None]
    moves = sum(1 for kind in kinds if kind.type == "update" and kind.move_path)
    return FileChangeEvent(FileChangeParams(
        **_base(item, ctx, "apply_patch", None),
        file_change_count=len(item.changes or []),
        file_add_count=sum(1 for kind in kinds if kind.type == "add"),
        file_update_count=sum(1 for kind in kinds if kind.type == "update") - moves,
        file_delete_count=sum(1 for kind in kinds if kind.type == "delete"),
        file_move_count=moves,
    ))


def _mcp(item: ToolItemView, ctx: ToolContext) -> AnyToolEvent:
    return McpToolCallEvent(McpToolCallParams(
        **_base(item, ctx, item.tool, item.duration_ms),
        mcp_server_name=item.server,
        mcp_tool_name=item.tool,
        mcp_error_present=item.error is not None,
        plugin_id=item.plugin_id,
        connector_id=item.app_context.connector_id if item.app_context is not None else None,
        voice_session_id=None,
        elicitation_type=None,
    ))


def _dynamic(item: ToolItemView, ctx: ToolContext) -> AnyToolEvent:
    contents = ([content.type for content in item.content_items]
                if item.content_items is not None else None)
    return DynamicToolCallEvent(DynamicToolCallParams(
        **_base(item, ctx, item.tool, item.duration_ms),
        dynamic_tool_name=item.tool,
        success=item.success,
        output_content_item_count=len(contents) if contents is not None else None,
        output_text_item_count=contents.count("inputText") if contents is not None else None,
        output_image_item_count=contents.count("inputImage") if contents is not None else None,
        output_audio_item_count=contents.count("inputAudio") if contents is not None else None,
    ))


def _collab(item: ToolItemView, ctx: ToolContext) -> AnyToolEvent:
    if item.type == "subAgentActivity":  # a v2 agent: one receiver, started by spawn_agent
        receivers = [item.agent_thread_id] if item.agent_thread_id else []
        tool: str | None = "spawn_agent"
        states: dict[str, AgentStateView] = {}
    else:
        receivers = list(item.receiver_thread_ids or [])
        tool, states = snake(item.tool), item.agents_states or {}
    statuses = [state.status for state in states.values()]
    return CollabAgentToolCallEvent(CollabAgentToolCallParams(
        **_base(item, ctx, tool, _elapsed(item)),
        sender_thread_id=item.sender_thread_id or ctx.thread_id,
        receiver_thread_count=len(receivers),
        receiver_thread_ids=receivers,
        requested_model=item.model,
        requested_reasoning_effort=item.reasoning_effort,
        agent_state_count=len(states) if item.type != "subAgentActivity" else len(receivers),
        completed_agent_count=statuses.count("completed"),
        failed_agent_count=statuses.count("errored") + statuses.count("failed"),
    ))


def _web_search(item: ToolItemView, ctx: ToolContext) -> AnyToolEvent:
    action = item.action
    queries = action.queries if action is not None else None
    query = item.query or (action.query if action is not None else None)
    return WebSearchEvent(WebSearchParams(
        **_base(item, ctx, "web_search", None, model_call=False),
        web_search_action=snake(action.type) if action is not None else None,
        query_present=bool(query) or bool(queries),
        query_count=len(queries) if queries else (1 if query else 0),
    ))


def _image(item: ToolItemView, ctx: ToolContext) -> AnyToolEvent:
    return ImageGenerationEvent(ImageGenerationParams(
        **_base(item, ctx, "image_generation", None),
        revised_prompt_present=bool(item.revised_prompt),
        saved_path_present=bool(item.saved_path),
        transparent_background=item.transparent_background,
        imagegen_request_id=None,  # not on the wire
        generation_id=item.generation_id,
    ))


_BUILDERS = {
    "commandExecution": _command,
    "fileChange": _file_change,
    "mcpToolCall": _mcp,
    "dynamicToolCall": _dynamic,
    "collabAgentToolCall": _collab,
    "subAgentActivity": _collab,
    "webSearch": _web_search,
    "imageGeneration": _image,
}


def tool_event(item: ToolItemView, ctx: ToolContext) -> AnyToolEvent | None:
    """The event codex posts for a completed tool item, or None for items it posts none for
    (a spawned agent's later activity: only its start is a tool call)."""
    if item.type == "subAgentActivity" and item.kind != "started":
        return None
    builder = _BUILDERS.get(item.type or "")
    return builder(item, ctx) if builder is not None else None


def diff_line_counts(diff: str) -> tuple[int, int]:
    """Lines added and deleted by a unified diff (file headers excluded)."""
    added = deleted = 0
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            deleted += 1
    return added, deleted


def fingerprints_event(thread_id: str, turn_id: str, model: str | None, completed_at: int,
                       diff: str) -> AcceptedLineFingerprintsEvent:
    added, deleted = diff_line_counts(diff)
    return AcceptedLineFingerprintsEvent(AcceptedLineFingerprintsParams(
        event_type="codex.accepted_line_fingerprints",
        turn_id=turn_id,
        thread_id=thread_id,
        product_surface="codex",
        model_slug=model,
        completed_at=completed_at,
        repo_hash=None,  # a hash of the repository's remote: not on the wire
        accepted_added_lines=added,
        accepted_deleted_lines=deleted,
        line_fingerprints=[],
    ))


# --- approvals --------------------------------------------------------------------------------

_REVIEW_SUBJECTS = {
    "item/commandExecution/requestApproval": ("command_execution", "command_execution"),
    "item/fileChange/requestApproval": ("file_change", "apply_patch"),
}
_DECISION_STATUS = {"accept": "approved", "acceptForSession": "approved",
                    "acceptWithExecpolicyAmendment": "approved", "decline": "denied",
                    "cancel": "aborted"}
_DECISION_RESOLUTION = {"acceptForSession": "session_approval",
                        "acceptWithExecpolicyAmendment": "execpolicy_amendment"}
_DECISION_OUTCOME = {"accept": "user_approved", "acceptForSession": "user_approved_for_session",
                     "acceptWithExecpolicyAmendment": "user_approved", "decline": "user_denied",
                     "cancel": "user_aborted"}


def _decision_name(decision: Any) -> str | None:
    if isinstance(decision, str):
        return decision
    if isinstance(decision, dict) and len(decision) == 1:
        return str(next(iter(decision)))
    return None


def review_outcome(decision: Any) -> str:
    """The tool event's final_approval_outcome after a user's decision."""
    return _DECISION_OUTCOME.get(_decision_name(decision) or "", "unknown")


def review_event(method: str, request_id: int | str, params: ApprovalRequestParams,
                 decision: Any, answered_ms: int, thread: ThreadContext,
                 client: AppServerClient, runtime: RuntimeInfo) -> ReviewEvent:
    """codex_review_event for a user's answer to an approval request; ``answered_ms`` is the
    tap's clock when it saw the answer (codex stamps its own, a moment later)."""
    kind, name = _REVIEW_SUBJECTS.get(method, (snake(method) or "", snake(method) or ""))
    decided = _decision_name(decision) or ""
    started = params.started_at_ms
    return ReviewEvent(ReviewParams(
        thread_id=params.thread_id or "",
        turn_id=params.turn_id,
        item_id=params.item_id,
        review_id=f"user:{request_id}",
        app_server_client=client,
        runtime=runtime,
        thread_source=thread.thread_source,
        subagent_source=thread.subagent_source,
        parent_thread_id=thread.parent_thread_id,
        subject_kind=kind,
        subject_name=name,
        reviewer="user",
        trigger="initial",
        status=_DECISION_STATUS.get(decided, "aborted"),
        resolution=_DECISION_RESOLUTION.get(decided, "none"),
        started_at_ms=started,
        completed_at_ms=answered_ms,
        duration_ms=answered_ms - started if started is not None else None,
    ))


# --- compaction -------------------------------------------------------------------------------


def compaction_event(thread_id: str, turn_id: str, thread: ThreadContext,
                     client: AppServerClient, runtime: RuntimeInfo, state: CompactionState,
                     *, model_switched: bool, started_ms: int | None,
                     completed_ms: int | None) -> CompactionEvent:
    """codex_compaction_event when a contextCompaction item completes. codex compacts on its
    own before a turn whose model changed (its compaction hash differs) or when the context
    outgrew the model's limit; the client asks with thread/compact/start."""
    manual = state.phase == "standalone_turn"
    reason = ("user_requested" if manual
              else "comp_hash_changed" if model_switched else "context_limit")
    return CompactionEvent(CompactionParams(
        thread_id=thread_id,
        session_id=thread.session_id,
        turn_id=turn_id,
        app_server_client=client,
        runtime=runtime,
        thread_source=thread.thread_source,
        subagent_source=thread.subagent_source,
        parent_thread_id=thread.parent_thread_id,
        trigger="manual" if manual else "auto",
        reason=reason,
        implementation="responses",
        phase=state.phase,
        strategy="memento",
        status="completed",
        voice_session_id=None,
        codex_error_kind=None,
        codex_error_http_status_code=None,
        usage_limit_window_minutes=None,
        active_context_tokens_before=state.context_tokens_before,
        active_context_tokens_after=state.context_tokens_after,
        retained_image_count=None,
        compaction_summary_tokens=None,
        cached_input_tokens=None,
        cache_write_input_tokens=None,
        started_at=started_ms // 1000 if started_ms is not None else 0,
        completed_at=completed_ms // 1000 if completed_ms is not None else 0,
        duration_ms=(completed_ms - started_ms if started_ms is not None
                     and completed_ms is not None else None),
    ))
