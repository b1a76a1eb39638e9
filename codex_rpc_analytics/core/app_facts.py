"""Facts a host reports itself (through ``AnalyticsEventsClient``), not seen on the wire.

These mirror the reference's "custom" facts (docs/analytics-events.md §9): skills invoked,
apps mentioned and used, plugins used and changing state. They are :class:`~.facts.Fact`
members of the same tagged union, so one :class:`~.reducer.Reducer` reduces both producers.
They belong to no connection: ``connection_id`` is :data:`NO_CONNECTION`.

The input types (``TrackEventsContext``, ``SkillInvocation``, ...) keep the reference's names
so a reader of ``codex-rs/analytics`` finds them; they are frozen msgspec structs that the
host builds and the reducer only reads.

All of them are ``gc=False``: they hold strings, numbers, lists of strings and each other,
so they take part in no reference cycle, and leaving them untracked means most ``track_*``
calls allocate nothing the garbage collector counts (skill and mention calls: one tuple), so
such a call is not the one that triggers a collection pause on the host's thread.
"""

from __future__ import annotations

from typing import TypeAlias

import msgspec

from .app_events import InvocationType, PluginState, SkillScope
from .facts import Fact

NO_CONNECTION = -1


class TrackEventsContext(msgspec.Struct, frozen=True, gc=False):
    """The turn an invocation happened in. ``product_client_id`` ``None`` means the client's
    originator (the reference fills the process originator the same way)."""

    thread_id: str
    turn_id: str
    model_slug: str
    product_client_id: str | None = None


class SkillInvocation(msgspec.Struct, frozen=True, gc=False):
    """One skill invoked in a turn.

    ``skill_path`` is the skill's file (``.../skills/doc/SKILL.md``). ``repo_url`` and
    ``repo_root`` describe the git repository holding a repo-scoped skill; the reference
    discovers both with git, here the host passes what it knows (``None`` for personal
    skills). They decide ``skill_id`` (see :func:`~.app_reducer.skill_id_for_local_skill`).
    """

    skill_name: str
    skill_path: str
    skill_scope: SkillScope = "user"
    invocation_type: InvocationType = "explicit"
    plugin_id: str | None = None
    remote_plugin_id: str | None = None
    repo_url: str | None = None
    repo_root: str | None = None


class AppInvocation(msgspec.Struct, frozen=True, gc=False):
    connector_id: str | None = None
    app_name: str | None = None
    invocation_type: InvocationType | None = None


class PluginCapabilitySummary(msgspec.Struct, frozen=True, gc=False):
    has_skills: bool = False
    mcp_server_names: list[str] = msgspec.field(default_factory=list)
    app_connector_ids: list[str] = msgspec.field(default_factory=list)


class PluginTelemetryMetadata(msgspec.Struct, frozen=True, gc=False):
    """A plugin as analytics names it. ``plugin_id`` is the ``"<name>@<marketplace>"`` key."""

    plugin_id: str | None = None
    remote_plugin_id: str | None = None
    capability_summary: PluginCapabilitySummary | None = None


# --- the facts -------------------------------------------------------------------------------


class SkillsInvoked(Fact, frozen=True, tag="skills_invoked", gc=False):
    tracking: TrackEventsContext
    invocations: tuple[SkillInvocation, ...]


class AppsMentioned(Fact, frozen=True, tag="apps_mentioned", gc=False):
    tracking: TrackEventsContext
    mentions: tuple[AppInvocation, ...]


class AppUsed(Fact, frozen=True, tag="app_used", gc=False):
    tracking: TrackEventsContext
    app: AppInvocation


class PluginUsed(Fact, frozen=True, tag="plugin_used", gc=False):
    tracking: TrackEventsContext
    plugin: PluginTelemetryMetadata


class PluginStateChanged(Fact, frozen=True, tag="plugin_state_changed", gc=False):
    plugin: PluginTelemetryMetadata
    state: PluginState


AnyAppFact: TypeAlias = SkillsInvoked | AppsMentioned | AppUsed | PluginUsed | PluginStateChanged
