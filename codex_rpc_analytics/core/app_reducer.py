"""Reduction of skill, app and plugin facts, and of thread archive changes from the wire.

An :class:`AppReducer` is part of every :class:`~.reducer.Reducer` (it registers its handlers
there), so the proxy's wire facts and a host's client facts meet in one reducer: an archive
notification can name the ``app_server_client`` a thread's connection announced, whoever
reported the connection.

De-duplication. The reference keeps ``codex_app_used`` keyed by (turn id, connector id) and
``codex_plugin_used`` keyed by (turn id, plugin id) in two sets that it **clears entirely** at
4,096 keys (docs/analytics-events.md §10.2), which re-admits every recent key at once. Here
each set is bounded at the same size but lets go of its least recently seen key, one at a
time: a duplicate of anything seen in the last 4,096 distinct keys is always suppressed.
The check runs on the reducer's single thread, after the queue, so (unlike the reference) a
fact dropped by a full queue does not consume its key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import msgspec

from .app_events import (
    PLUGIN_STATE_EVENTS,
    AppMentionedEvent,
    AppParams,
    AppUsedEvent,
    PluginParams,
    PluginUsedEvent,
    PluginUsedParams,
    SkillInvocationEvent,
    SkillInvocationParams,
    ThreadArchiveEvent,
    ThreadArchiveParams,
)
from .app_facts import (
    AppInvocation,
    AppsMentioned,
    AppUsed,
    PluginStateChanged,
    PluginTelemetryMetadata,
    PluginUsed,
    SkillInvocation,
    SkillsInvoked,
    TrackEventsContext,
)
from .bounded import BoundedMap
from .facts import Fact, ThreadArchiveChanged

if TYPE_CHECKING:
    from .events import AnyEvent
    from .reducer import Reducer

# The reference's dedupe bound (ANALYTICS_EVENT_DEDUPE_MAX_KEYS).
DEDUPE_MAX_KEYS = 4096
# codex's default originator (codex_login DEFAULT_ORIGINATOR); an app-server replaces it with
# the first client's clientInfo.name, and AnalyticsEventsClient does the same.
DEFAULT_ORIGINATOR = "codex_cli_rs"

_NO_EVENTS: Sequence[Any] = ()


class AppReducerStats(msgspec.Struct):
    skill_invocations: int = 0
    app_mentions: int = 0
    apps_used: int = 0
    apps_used_duplicates: int = 0
    plugins_used: int = 0
    plugins_used_duplicates: int = 0
    dedupe_evictions: int = 0
    plugin_state_changes: int = 0
    thread_archive_events: int = 0
    # Archive events of threads the reducer never saw: sent without the optional members.
    archives_without_thread: int = 0


# --- skill_id --------------------------------------------------------------------------------


def normalize_path_for_skill_id(
    repo_url: str | None, repo_root: str | None, skill_path: str
) -> str:
    """The path part of a skill id: relative to the repo root for a repo skill (when the
    skill lies under it), else the path as given; backslashes become ``/``.

    The reference first canonicalises both paths on disk (``std::fs::canonicalize``, keeping
    the path as given when that fails); the core does no I/O, so its callers do that
    (``AnalyticsEventsClient`` does, on its worker thread). The prefix test is by path
    components, like Rust's ``Path::strip_prefix``: ``/repo/rootx`` is not under ``/repo/root``.
    """
    if repo_url is not None and repo_root is not None:
        parts, root = PurePath(skill_path).parts, PurePath(repo_root).parts
        if parts[: len(root)] == root:
            return "/".join(parts[len(root):]).replace("\\", "/")
    return skill_path.replace("\\", "/")


def skill_id_for_local_skill(
    repo_url: str | None, repo_root: str | None, skill_path: str, skill_name: str
) -> str:
    """sha1-hex of ``"repo_<repo_url>"`` or ``"personal"``, ``_``, the normalised path, ``_``,
    the skill name (docs/analytics-events.md §8)."""
    prefix = f"repo_{repo_url}" if repo_url is not None else "personal"
    path = normalize_path_for_skill_id(repo_url, repo_root, skill_path)
    raw = f"{prefix}_{path}_{skill_name}"
    return hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()


# --- plugin metadata -------------------------------------------------------------------------


def split_plugin_id(plugin_id: str | None) -> tuple[str | None, str | None]:
    """``"<name>@<marketplace>"`` -> (name, marketplace), split at the last ``@`` like the
    reference's ``PluginId::parse``; anything else names neither."""
    if plugin_id is None:
        return None, None
    name, at, marketplace = plugin_id.rpartition("@")
    if not at or not name or not marketplace:
        return None, None
    return name, marketplace


def plugin_params(plugin: PluginTelemetryMetadata, product_client_id: str) -> PluginParams:
    name, marketplace = split_plugin_id(plugin.plugin_id)
    summary = plugin.capability_summary
    return PluginParams(
        plugin_id=plugin.plugin_id,
        remote_plugin_id=plugin.remote_plugin_id,
        plugin_name=name,
        marketplace_name=marketplace,
        has_skills=summary.has_skills if summary is not None else None,
        mcp_server_count=len(summary.mcp_server_names) if summary is not None else None,
        connector_ids=list(summary.app_connector_ids) if summary is not None else None,
        product_client_id=product_client_id,
    )


def plugin_dedupe_key(plugin: PluginTelemetryMetadata) -> str | None:
    """The reference's key: the plugin id, else the remote plugin id, else none (no dedupe)."""
    return plugin.plugin_id if plugin.plugin_id is not None else plugin.remote_plugin_id


class RecentKeys:
    """A bounded "seen before?" set that forgets its least recently seen key first."""

    __slots__ = ("_keys",)

    def __init__(self, capacity: int) -> None:
        self._keys: BoundedMap[tuple[str, str], None] = BoundedMap(capacity)

    def first_sighting(self, key: tuple[str, str]) -> bool:
        """True the first time ``key`` is seen (while remembered); every sighting refreshes it."""
        seen = key in self._keys
        self._keys.put(key, None)
        return not seen

    @property
    def evicted(self) -> int:
        return self._keys.evicted

    def __len__(self) -> int:
        return len(self._keys)


# --- the reducer -----------------------------------------------------------------------------


class AppReducer:
    def __init__(
        self,
        reducer: Reducer,
        *,
        originator: str = DEFAULT_ORIGINATOR,
        dedupe_max_keys: int = DEDUPE_MAX_KEYS,
    ) -> None:
        self._reducer = reducer
        # product_client_id of plugin state events and of contexts that name none.
        self.originator = originator
        self.stats = AppReducerStats()
        self.apps_used = RecentKeys(dedupe_max_keys)
        self.plugins_used = RecentKeys(dedupe_max_keys)
        self.handlers: dict[type[Fact], Callable[[Any], Sequence[AnyEvent]]] = {
            SkillsInvoked: self._on_skills_invoked,
            AppsMentioned: self._on_apps_mentioned,
            AppUsed: self._on_app_used,
            PluginUsed: self._on_plugin_used,
            PluginStateChanged: self._on_plugin_state_changed,
            ThreadArchiveChanged: self._on_archive_changed,
        }

    def _client_id(self, tracking: TrackEventsContext) -> str:
        return tracking.product_client_id or self.originator

    def _note_evictions(self) -> None:
        self.stats.dedupe_evictions = self.apps_used.evicted + self.plugins_used.evicted

    # -- skills -----------------------------------------------------------------------------

    def _on_skills_invoked(self, fact: SkillsInvoked) -> Sequence[AnyEvent]:
        tracking = fact.tracking
        events = [self._skill_event(tracking, invocation) for invocation in fact.invocations]
        self.stats.skill_invocations += len(events)
        return events

    def _skill_event(
        self, tracking: TrackEventsContext, invocation: SkillInvocation
    ) -> SkillInvocationEvent:
        return SkillInvocationEvent(
            skill_id=skill_id_for_local_skill(
                invocation.repo_url, invocation.repo_root, invocation.skill_path,
                invocation.skill_name,
            ),
            skill_name=invocation.skill_name,
            event_params=SkillInvocationParams(
                product_client_id=self._client_id(tracking),
                skill_scope=invocation.skill_scope,
                plugin_id=invocation.plugin_id,
                remote_plugin_id=invocation.remote_plugin_id,
                repo_url=invocation.repo_url,
                thread_id=tracking.thread_id,
                turn_id=tracking.turn_id,
                invoke_type=invocation.invocation_type,
                model_slug=tracking.model_slug,
            ),
        )

    # -- apps -------------------------------------------------------------------------------

    def _app_params(self, tracking: TrackEventsContext, app: AppInvocation) -> AppParams:
        return AppParams(
            connector_id=app.connector_id,
            thread_id=tracking.thread_id,
            turn_id=tracking.turn_id,
            app_name=app.app_name,
            product_client_id=self._client_id(tracking),
            invoke_type=app.invocation_type,
            model_slug=tracking.model_slug,
        )

    def _on_apps_mentioned(self, fact: AppsMentioned) -> Sequence[AnyEvent]:
        events = [AppMentionedEvent(self._app_params(fact.tracking, app)) for app in fact.mentions]
        self.stats.app_mentions += len(events)
        return events

    def _on_app_used(self, fact: AppUsed) -> Sequence[AnyEvent]:
        connector = fact.app.connector_id
        # Without a connector id the reference never de-duplicates.
        if connector is not None and not self.apps_used.first_sighting(
            (fact.tracking.turn_id, connector)
        ):
            self.stats.apps_used_duplicates += 1
            return _NO_EVENTS
        self._note_evictions()
        self.stats.apps_used += 1
        return (AppUsedEvent(self._app_params(fact.tracking, fact.app)),)

    # -- plugins ----------------------------------------------------------------------------

    def _on_plugin_used(self, fact: PluginUsed) -> Sequence[AnyEvent]:
        tracking, plugin = fact.tracking, fact.plugin
        key = plugin_dedupe_key(plugin)
        if key is not None and not self.plugins_used.first_sighting((tracking.turn_id, key)):
            self.stats.plugins_used_duplicates += 1
            return _NO_EVENTS
        self._note_evictions()
        self.stats.plugins_used += 1
        meta = plugin_params(plugin, self._client_id(tracking))
        summary = plugin.capability_summary
        return (PluginUsedEvent(PluginUsedParams(
            plugin_id=meta.plugin_id,
            remote_plugin_id=meta.remote_plugin_id,
            plugin_name=meta.plugin_name,
            marketplace_name=meta.marketplace_name,
            has_skills=meta.has_skills,
            mcp_server_count=meta.mcp_server_count,
            connector_ids=meta.connector_ids,
            product_client_id=meta.product_client_id,
            mcp_server_names=list(summary.mcp_server_names) if summary is not None else None,
            thread_id=tracking.thread_id,
            turn_id=tracking.turn_id,
            model_slug=tracking.model_slug,
        )),)

    def _on_plugin_state_changed(self, fact: PluginStateChanged) -> Sequence[AnyEvent]:
        event_type = PLUGIN_STATE_EVENTS.get(fact.state)
        if event_type is None:
            return _NO_EVENTS
        self.stats.plugin_state_changes += 1
        # The reference names the process originator here, never a turn's client.
        return (event_type(plugin_params(fact.plugin, self.originator)),)

    # -- thread archive (from the wire) -----------------------------------------------------

    def _on_archive_changed(self, fact: ThreadArchiveChanged) -> Sequence[AnyEvent]:
        """``thread/archived`` / ``thread/unarchived``: the optional members come from the
        thread's metadata and its connection, when the reducer knows them; otherwise they are
        omitted, as the reference does."""
        reducer = self._reducer
        thread = reducer.threads.get(fact.thread_id)
        connection = (
            reducer.connections.get(thread.connection_id) if thread is not None else None
        )
        if thread is None:
            self.stats.archives_without_thread += 1
        # The reference stamps the event when it reduces the notification; the notification's
        # own emittedAtMs (when the tap supplies it) or the tap's clock is the same moment.
        occurred_at_ms = (
            fact.emitted_at_ms if fact.emitted_at_ms is not None
            else round(fact.observed_at * 1000)
        )
        context = thread.context if thread is not None else None
        self.stats.thread_archive_events += 1
        return (ThreadArchiveEvent(ThreadArchiveParams(
            thread_id=fact.thread_id,
            action=fact.action,
            occurred_at_ms=max(occurred_at_ms, 0),
            app_server_client=connection.client if connection is not None else msgspec.UNSET,
            runtime=connection.runtime if connection is not None else msgspec.UNSET,
            thread_source=_present(context.thread_source if context else None),
            parent_thread_id=_present(context.parent_thread_id if context else None),
        )),)


def _present(value: str | None) -> str | msgspec.UnsetType:
    return value if value is not None else msgspec.UNSET
