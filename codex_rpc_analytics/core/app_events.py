"""The skill, app, plugin and thread-archive events, wire-identical to the reference.

Same rules as :mod:`.events` (docs/analytics-events.md §2, docs/python-stack.md §2.3): fields
in the reference's struct declaration order, optional values encoded as ``null``, no
inheritance between params structs (the reference's ``#[serde(flatten)]`` of the plugin
metadata into ``codex_plugin_used`` is spelled out field by field), no ``omit_defaults``.

Two shapes differ from the ``{"event_type", "event_params"}`` norm, both as in the reference:

* ``skill_invocation`` carries ``skill_id`` and ``skill_name`` at the top level, between
  ``event_type`` and ``event_params``;
* ``codex_thread_archive_event`` omits its four optional members when absent (serde's
  ``skip_serializing_if``): they default to ``msgspec.UNSET``, which msgspec leaves out.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

from .client_info import AppServerClient
from .runtime import RuntimeInfo

InvocationType = Literal["explicit", "implicit"]
SkillScope = Literal["user", "repo", "system", "admin"]
PluginState = Literal["installed", "uninstalled", "enabled", "disabled"]
ArchiveAction = Literal["archived", "unarchived"]


# --- skill_invocation ------------------------------------------------------------------------


class SkillInvocationParams(msgspec.Struct, frozen=True):
    product_client_id: str | None
    skill_scope: SkillScope | None
    plugin_id: str | None
    remote_plugin_id: str | None
    repo_url: str | None
    thread_id: str | None
    turn_id: str | None
    invoke_type: InvocationType | None
    model_slug: str | None


class SkillInvocationEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                           tag="skill_invocation"):
    skill_id: str
    skill_name: str
    event_params: SkillInvocationParams


# --- codex_app_mentioned / codex_app_used ----------------------------------------------------


class AppParams(msgspec.Struct, frozen=True):
    connector_id: str | None
    thread_id: str | None
    turn_id: str | None
    app_name: str | None
    product_client_id: str | None
    invoke_type: InvocationType | None
    model_slug: str | None


class AppMentionedEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                        tag="codex_app_mentioned"):
    event_params: AppParams


class AppUsedEvent(msgspec.Struct, frozen=True, tag_field="event_type", tag="codex_app_used"):
    event_params: AppParams


# --- plugins ---------------------------------------------------------------------------------


class PluginParams(msgspec.Struct, frozen=True):
    """The reference's plugin metadata: the whole ``event_params`` of the four state events."""

    plugin_id: str | None
    remote_plugin_id: str | None
    plugin_name: str | None
    marketplace_name: str | None
    has_skills: bool | None
    mcp_server_count: int | None
    connector_ids: list[str] | None
    product_client_id: str | None


class PluginUsedParams(msgspec.Struct, frozen=True):
    """:class:`PluginParams` flattened, then ``mcp_server_names`` and the turn's context."""

    plugin_id: str | None
    remote_plugin_id: str | None
    plugin_name: str | None
    marketplace_name: str | None
    has_skills: bool | None
    mcp_server_count: int | None
    connector_ids: list[str] | None
    product_client_id: str | None
    mcp_server_names: list[str] | None
    thread_id: str | None
    turn_id: str | None
    model_slug: str | None


class PluginUsedEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                      tag="codex_plugin_used"):
    event_params: PluginUsedParams


class PluginInstalledEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                           tag="codex_plugin_installed"):
    event_params: PluginParams


class PluginUninstalledEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                             tag="codex_plugin_uninstalled"):
    event_params: PluginParams


class PluginEnabledEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                         tag="codex_plugin_enabled"):
    event_params: PluginParams


class PluginDisabledEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                          tag="codex_plugin_disabled"):
    event_params: PluginParams


PluginStateEvent: TypeAlias = (
    PluginInstalledEvent | PluginUninstalledEvent | PluginEnabledEvent | PluginDisabledEvent
)
PLUGIN_STATE_EVENTS: dict[PluginState, type[PluginStateEvent]] = {
    "installed": PluginInstalledEvent,
    "uninstalled": PluginUninstalledEvent,
    "enabled": PluginEnabledEvent,
    "disabled": PluginDisabledEvent,
}


# --- codex_thread_archive_event --------------------------------------------------------------


class ThreadArchiveParams(msgspec.Struct, frozen=True):
    thread_id: str
    action: ArchiveAction
    occurred_at_ms: int
    # Omitted when absent (the only event that omits keys; analytics-events.md §2).
    app_server_client: AppServerClient | msgspec.UnsetType = msgspec.UNSET
    runtime: RuntimeInfo | msgspec.UnsetType = msgspec.UNSET
    thread_source: str | msgspec.UnsetType = msgspec.UNSET
    parent_thread_id: str | msgspec.UnsetType = msgspec.UNSET


class ThreadArchiveEvent(msgspec.Struct, frozen=True, tag_field="event_type",
                         tag="codex_thread_archive_event"):
    event_params: ThreadArchiveParams


AnyAppEvent: TypeAlias = (
    SkillInvocationEvent
    | AppMentionedEvent
    | AppUsedEvent
    | PluginUsedEvent
    | PluginInstalledEvent
    | PluginUninstalledEvent
    | PluginEnabledEvent
    | PluginDisabledEvent
    | ThreadArchiveEvent
)

APP_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    SkillInvocationEvent,
    AppMentionedEvent,
    AppUsedEvent,
    PluginUsedEvent,
    PluginInstalledEvent,
    PluginUninstalledEvent,
    PluginEnabledEvent,
    PluginDisabledEvent,
    ThreadArchiveEvent,
)
