"""Typed views of the thread items a tool event is built from (``item/completed``).

Every ``item/completed`` is decoded first as a small :class:`~.views.ItemView` (type, id and
the few members turn counters read); only tool items, a minority, are decoded a second time
into :class:`ToolItemView`. Members analytics does not read (command output, diffs, MCP
results, image data) are skipped without being built.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .views import View

JsonValue = Any

# The item types codex 0.169.0 posts a tool event for.
TOOL_ITEM_TYPES = frozenset((
    "commandExecution", "fileChange", "mcpToolCall", "dynamicToolCall",
    "collabAgentToolCall", "subAgentActivity", "webSearch", "imageGeneration",
))


class CommandActionView(View, frozen=True):
    type: str | None = None


class ChangeKindView(msgspec.Struct, frozen=True):
    type: str | None = None
    move_path: str | None = None  # snake_case on the wire


class FileChangeView(View, frozen=True):
    kind: ChangeKindView | None = None


class WebSearchActionView(View, frozen=True):
    type: str | None = None
    query: str | None = None
    queries: list[str] | None = None


class ContentItemView(View, frozen=True):
    type: str | None = None


class AgentStateView(View, frozen=True):
    status: str | None = None


class AppContextView(View, frozen=True):
    connector_id: str | None = None


class ToolItemView(View, frozen=True):
    """The members of every tool item type codex 0.169.0 reports a tool event for."""

    type: str | None = None
    id: str | None = None
    status: str | None = None
    started_at_ms: int | None = None
    completed_at_ms: int | None = None
    duration_ms: int | None = None
    # commandExecution
    source: str | None = None
    exit_code: int | None = None
    plugin_id: str | None = None
    script_path: str | None = None
    command_actions: list[CommandActionView] | None = None
    # fileChange
    changes: list[FileChangeView] | None = None
    # webSearch
    query: str | None = None
    action: WebSearchActionView | None = None
    # imageGeneration
    revised_prompt: str | None = None
    saved_path: str | None = None
    transparent_background: bool | None = None
    generation_id: str | None = None
    # dynamicToolCall, mcpToolCall, collabAgentToolCall
    tool: str | None = None
    namespace: str | None = None
    success: bool | None = None
    content_items: list[ContentItemView] | None = None
    server: str | None = None
    error: JsonValue = None
    app_context: AppContextView | None = None
    # collabAgentToolCall, subAgentActivity
    sender_thread_id: str | None = None
    receiver_thread_ids: list[str] | None = None
    model: str | None = None
    reasoning_effort: str | None = None
    agents_states: dict[str, AgentStateView] | None = None
    agent_thread_id: str | None = None
    kind: str | None = None


class ToolItemNotification(View, frozen=True):
    """``item/completed`` of a tool item, decoded a second time with the whole tool view."""

    thread_id: str | None = None
    turn_id: str | None = None
    item: ToolItemView | None = None


class TurnDiffNotification(View, frozen=True):
    """``turn/diff/updated``: the turn's aggregated unified diff so far."""

    thread_id: str | None = None
    turn_id: str | None = None
    diff: str | None = None
