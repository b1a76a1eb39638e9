"""Skill, app, plugin and thread-archive events from the pure core, compared as whole documents.

Inputs are the reference's own test inputs (codex-rs/analytics tests: ``test_tracking_context``
= thread/turn ids, model ``gpt-5``, product client ``codex_work_desktop``; the
``sample@test`` plugin with servers ``mcp-1``/``mcp-2`` and connectors ``calendar``/``drive``;
the ``doc`` skill under ``/Users/abc/.codex/skills``). Expected documents are written out
byte for byte, so key order and null rules are checked, not just values. Where the newest
reference differs from the key lists of docs/analytics-events.md §8 (it adds
``voice_session_id`` and drops ``repo_url``), the docs win; see the README.
"""

from __future__ import annotations

import hashlib
from typing import Any

from codex_rpc_analytics.core import Analyzer, RuntimeInfo, encode_event
from codex_rpc_analytics.core.app_facts import (
    NO_CONNECTION,
    AppInvocation,
    AppsMentioned,
    AppUsed,
    PluginCapabilitySummary,
    PluginStateChanged,
    PluginTelemetryMetadata,
    PluginUsed,
    SkillInvocation,
    SkillsInvoked,
    TrackEventsContext,
)
from codex_rpc_analytics.core.app_reducer import (
    DEDUPE_MAX_KEYS,
    RecentKeys,
    normalize_path_for_skill_id,
    skill_id_for_local_skill,
)
from codex_rpc_analytics.core.facts import Fact, ThreadArchiveChanged
from codex_rpc_analytics.core.reducer import Reducer
from tests.support import wire_lines

HOST = RuntimeInfo("host-version", "hostos", "9.9.9", "hostarch")
TEST_PRODUCT_CLIENT_ID = "codex_work_desktop"
ORIGINATOR = "codex_cli_rs"  # the reducer's default originator, codex's DEFAULT_ORIGINATOR


def tracking(thread_id: str, turn_id: str) -> TrackEventsContext:
    return TrackEventsContext(thread_id, turn_id, "gpt-5", TEST_PRODUCT_CLIENT_ID)


def sample_plugin(**changes: Any) -> PluginTelemetryMetadata:
    plugin = PluginTelemetryMetadata(
        plugin_id="sample@test",
        capability_summary=PluginCapabilitySummary(
            has_skills=True,
            mcp_server_names=["mcp-1", "mcp-2"],
            app_connector_ids=["calendar", "drive"],
        ),
    )
    for name, value in changes.items():
        plugin = PluginTelemetryMetadata(**{**_fields(plugin), name: value})
    return plugin


def _fields(plugin: PluginTelemetryMetadata) -> dict[str, Any]:
    return {name: getattr(plugin, name) for name in plugin.__struct_fields__}


def reduce(*facts: Fact, reducer: Reducer | None = None) -> list[bytes]:
    reducer = reducer or Reducer(HOST)
    return [encode_event(event) for fact in facts for event in reducer.apply(fact)]


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


# --- skill_invocation ------------------------------------------------------------------------

USER_SKILL = "/Users/abc/.codex/skills/doc/SKILL.md"


def test_skill_invocation_whole_document() -> None:
    # reference: reducer_ingests_skill_invoked_fact
    fact = SkillsInvoked(NO_CONNECTION, 0.0, tracking("thread-1", "turn-1"),
                         (SkillInvocation("doc", USER_SKILL, "user", "explicit"),))
    skill_id = sha1("personal_/Users/abc/.codex/skills/doc/SKILL.md_doc")
    assert reduce(fact) == [
        b'{"event_type":"skill_invocation","skill_id":"' + skill_id.encode()
        + b'","skill_name":"doc","event_params":{"product_client_id":"codex_work_desktop",'
        b'"skill_scope":"user","plugin_id":null,"remote_plugin_id":null,"repo_url":null,'
        b'"thread_id":"thread-1","turn_id":"turn-1","invoke_type":"explicit",'
        b'"model_slug":"gpt-5"}}'
    ]


def test_plugin_skill_invocation_names_its_plugin() -> None:
    # reference: reducer_includes_plugin_ids_for_plugin_skill_invocations
    path = "/Users/abc/.codex/plugins/cache/test/sample/skills/doc/SKILL.md"
    fact = SkillsInvoked(NO_CONNECTION, 0.0, tracking("thread-1", "turn-1"), (SkillInvocation(
        "sample:doc", path, "user", "explicit", plugin_id="sample@test",
        remote_plugin_id="plugins~Plugin_sample"),))
    skill_id = sha1(f"personal_{path}_sample:doc")
    assert reduce(fact) == [
        b'{"event_type":"skill_invocation","skill_id":"' + skill_id.encode()
        + b'","skill_name":"sample:doc","event_params":{"product_client_id":'
        b'"codex_work_desktop","skill_scope":"user","plugin_id":"sample@test",'
        b'"remote_plugin_id":"plugins~Plugin_sample","repo_url":null,"thread_id":"thread-1",'
        b'"turn_id":"turn-1","invoke_type":"explicit","model_slug":"gpt-5"}}'
    ]


def test_repo_skill_id_uses_the_path_relative_to_the_repo_root() -> None:
    url = "https://example.com/repo.git"
    fact = SkillsInvoked(NO_CONNECTION, 0.0, tracking("thread-1", "turn-1"), (SkillInvocation(
        "doc", "/repo/root/.codex/skills/doc/SKILL.md", "repo", "implicit", repo_url=url,
        repo_root="/repo/root"),))
    (event,) = reduce(fact)
    skill_id = sha1("repo_https://example.com/repo.git_.codex/skills/doc/SKILL.md_doc")
    assert event.startswith(b'{"event_type":"skill_invocation","skill_id":"'
                            + skill_id.encode() + b'","skill_name":"doc",')
    assert b'"skill_scope":"repo",' in event
    assert b'"repo_url":"https://example.com/repo.git",' in event
    assert b'"invoke_type":"implicit",' in event


def test_normalize_path_for_skill_id_reference_cases() -> None:
    url = "https://example.com/repo.git"
    # repo-scoped: relative to the root
    assert normalize_path_for_skill_id(url, "/repo/root", "/repo/root/.codex/skills/doc/SKILL.md"
                                       ) == ".codex/skills/doc/SKILL.md"
    # user- and admin-scoped: absolute
    assert normalize_path_for_skill_id(None, None, USER_SKILL) == USER_SKILL
    assert normalize_path_for_skill_id(None, None, "/etc/codex/skills/doc/SKILL.md"
                                       ) == "/etc/codex/skills/doc/SKILL.md"
    # repo root not a prefix of the skill path: absolute
    assert normalize_path_for_skill_id(url, "/repo/root", "/other/path/.codex/skills/doc/SKILL.md"
                                       ) == "/other/path/.codex/skills/doc/SKILL.md"


def test_normalize_path_for_skill_id_edges() -> None:
    url = "https://example.com/repo.git"
    # A prefix by components, not by characters (Rust's Path::strip_prefix).
    assert normalize_path_for_skill_id(url, "/repo/root", "/repo/rootx/SKILL.md"
                                       ) == "/repo/rootx/SKILL.md"
    assert normalize_path_for_skill_id(url, "/repo/root/", "/repo/root/a/SKILL.md"
                                       ) == "a/SKILL.md"
    # A root without a URL, or a URL without a root, keeps the path absolute.
    assert normalize_path_for_skill_id(None, "/repo/root", "/repo/root/a") == "/repo/root/a"
    assert normalize_path_for_skill_id(url, None, "/repo/root/a") == "/repo/root/a"
    # Windows separators are normalised to '/'.
    assert normalize_path_for_skill_id(None, None, "C:\\Users\\abc\\SKILL.md"
                                       ) == "C:/Users/abc/SKILL.md"
    # The id of a repo skill with no known root keeps the repo prefix and the absolute path.
    assert skill_id_for_local_skill(url, None, "/x/SKILL.md", "doc") == sha1(
        f"repo_{url}_/x/SKILL.md_doc")


# --- codex_app_mentioned / codex_app_used ----------------------------------------------------


def test_app_mentioned_whole_document() -> None:
    # reference: app_mentioned_event_serializes_expected_shape
    fact = AppsMentioned(NO_CONNECTION, 0.0, tracking("thread-1", "turn-1"),
                         (AppInvocation("calendar", "Calendar", "explicit"),))
    assert reduce(fact) == [
        b'{"event_type":"codex_app_mentioned","event_params":{"connector_id":"calendar",'
        b'"thread_id":"thread-1","turn_id":"turn-1","app_name":"Calendar",'
        b'"product_client_id":"codex_work_desktop","invoke_type":"explicit",'
        b'"model_slug":"gpt-5"}}'
    ]


def test_app_used_whole_document() -> None:
    # reference: app_used_event_serializes_expected_shape
    fact = AppUsed(NO_CONNECTION, 0.0, tracking("thread-2", "turn-2"),
                   AppInvocation("drive", "Google Drive", "implicit"))
    assert reduce(fact) == [
        b'{"event_type":"codex_app_used","event_params":{"connector_id":"drive",'
        b'"thread_id":"thread-2","turn_id":"turn-2","app_name":"Google Drive",'
        b'"product_client_id":"codex_work_desktop","invoke_type":"implicit",'
        b'"model_slug":"gpt-5"}}'
    ]


def test_app_without_details_and_context_without_client_use_nulls_and_the_originator() -> None:
    context = TrackEventsContext("thread-1", "turn-1", "gpt-5")
    mentioned = AppsMentioned(NO_CONNECTION, 0.0, context, (AppInvocation(),))
    assert reduce(mentioned) == [
        b'{"event_type":"codex_app_mentioned","event_params":{"connector_id":null,'
        b'"thread_id":"thread-1","turn_id":"turn-1","app_name":null,'
        b'"product_client_id":"codex_cli_rs","invoke_type":null,"model_slug":"gpt-5"}}'
    ]


def test_several_mentions_give_one_event_each_in_order() -> None:
    fact = AppsMentioned(NO_CONNECTION, 0.0, tracking("t", "u"),
                         (AppInvocation("a"), AppInvocation("b"), AppInvocation("a")))
    events = reduce(fact)
    assert [e.split(b'"connector_id":"')[1][:1] for e in events] == [b"a", b"b", b"a"]


# --- plugins ---------------------------------------------------------------------------------

PLUGIN_META = (
    b'"plugin_id":"sample@test","remote_plugin_id":null,"plugin_name":"sample",'
    b'"marketplace_name":"test","has_skills":true,"mcp_server_count":2,'
    b'"connector_ids":["calendar","drive"]'
)


def test_plugin_used_whole_document() -> None:
    # reference: plugin_used_event_serializes_expected_shape
    fact = PluginUsed(NO_CONNECTION, 0.0, tracking("thread-3", "turn-3"), sample_plugin())
    assert reduce(fact) == [
        b'{"event_type":"codex_plugin_used","event_params":{' + PLUGIN_META
        + b',"product_client_id":"codex_work_desktop","mcp_server_names":["mcp-1","mcp-2"],'
        b'"thread_id":"thread-3","turn_id":"turn-3","model_slug":"gpt-5"}}'
    ]


def test_plugin_state_events_whole_documents() -> None:
    # reference: plugin_management_event_serializes_expected_shape and
    # reducer_ingests_plugin_state_changed_fact (product_client_id = the process originator)
    facts = [PluginStateChanged(NO_CONNECTION, 0.0, sample_plugin(), state)
             for state in ("installed", "uninstalled", "enabled", "disabled")]
    assert reduce(*facts) == [
        b'{"event_type":"codex_plugin_' + state + b'","event_params":{' + PLUGIN_META
        + b',"product_client_id":"codex_cli_rs"}}'
        for state in (b"installed", b"uninstalled", b"enabled", b"disabled")
    ]


def test_plugin_state_event_keeps_the_local_id_when_a_remote_id_exists() -> None:
    # reference: plugin_management_event_keeps_plugin_id_local_when_remote_id_exists
    plugin = sample_plugin(remote_plugin_id="plugins~Plugin_remote")
    (event,) = reduce(PluginStateChanged(NO_CONNECTION, 0.0, plugin, "installed"))
    assert event == (
        b'{"event_type":"codex_plugin_installed","event_params":{"plugin_id":"sample@test",'
        b'"remote_plugin_id":"plugins~Plugin_remote","plugin_name":"sample",'
        b'"marketplace_name":"test","has_skills":true,"mcp_server_count":2,'
        b'"connector_ids":["calendar","drive"],"product_client_id":"codex_cli_rs"}}'
    )


def test_plugin_without_summary_or_local_id() -> None:
    plugin = PluginTelemetryMetadata(remote_plugin_id="plugins~Plugin_x")
    (event,) = reduce(PluginUsed(NO_CONNECTION, 0.0, tracking("t", "u"), plugin))
    assert event == (
        b'{"event_type":"codex_plugin_used","event_params":{"plugin_id":null,'
        b'"remote_plugin_id":"plugins~Plugin_x","plugin_name":null,"marketplace_name":null,'
        b'"has_skills":null,"mcp_server_count":null,"connector_ids":null,'
        b'"product_client_id":"codex_work_desktop","mcp_server_names":null,"thread_id":"t",'
        b'"turn_id":"u","model_slug":"gpt-5"}}'
    )


def test_plugin_key_splits_at_the_last_at_sign() -> None:
    plugin = PluginTelemetryMetadata(plugin_id="a@b@market")
    (event,) = reduce(PluginStateChanged(NO_CONNECTION, 0.0, plugin, "enabled"))
    assert b'"plugin_name":"a@b","marketplace_name":"market"' in event
    (bad,) = reduce(PluginStateChanged(NO_CONNECTION, 0.0,
                                       PluginTelemetryMetadata(plugin_id="nomarket"), "enabled"))
    assert b'"plugin_id":"nomarket","remote_plugin_id":null,"plugin_name":null,' in bad


# --- de-duplication --------------------------------------------------------------------------


def test_app_used_is_deduplicated_per_turn_and_connector() -> None:
    reducer = Reducer(HOST)

    def used(turn: str, connector: str | None) -> int:
        fact = AppUsed(NO_CONNECTION, 0.0, tracking("thread-1", turn), AppInvocation(connector))
        return len(reducer.apply(fact))

    assert [used("turn-1", "drive"), used("turn-1", "drive"), used("turn-2", "drive"),
            used("turn-1", "calendar")] == [1, 0, 1, 1]
    # Without a connector id the reference never de-duplicates.
    assert [used("turn-1", None), used("turn-1", None)] == [1, 1]
    assert reducer.apps.stats.apps_used_duplicates == 1


def test_plugin_used_is_deduplicated_per_turn_and_plugin() -> None:
    # reference: plugin_used_dedupe_is_keyed_by_turn_and_plugin
    reducer = Reducer(HOST)

    def used(turn: str, plugin: PluginTelemetryMetadata) -> int:
        return len(reducer.apply(PluginUsed(NO_CONNECTION, 0.0, tracking("thread-1", turn),
                                            plugin)))

    plugin = sample_plugin()
    assert [used("turn-1", plugin), used("turn-1", plugin), used("turn-2", plugin)] == [1, 0, 1]
    # Keyed by the remote id when there is no local one; never when there is neither.
    remote = PluginTelemetryMetadata(remote_plugin_id="plugins~Plugin_x")
    assert [used("turn-1", remote), used("turn-1", remote)] == [1, 0]
    anonymous = PluginTelemetryMetadata()
    assert [used("turn-1", anonymous), used("turn-1", anonymous)] == [1, 1]


class ReferenceDedupeSet:
    """The reference's producer-side set: cleared entirely once it holds 4,096 keys."""

    def __init__(self) -> None:
        self.keys: set[tuple[str, str]] = set()

    def first_sighting(self, key: tuple[str, str]) -> bool:
        if len(self.keys) >= DEDUPE_MAX_KEYS:
            self.keys.clear()
        if key in self.keys:
            return False
        self.keys.add(key)
        return True


def test_bounded_dedupe_evicts_oldest_first_where_the_reference_readmits_recent_keys() -> None:
    reference, ours = ReferenceDedupeSet(), RecentKeys(DEDUPE_MAX_KEYS)
    keys = [(f"turn-{i}", "drive") for i in range(DEDUPE_MAX_KEYS + 1)]
    recent = keys[-2]  # seen one key ago
    for key in keys:
        assert reference.first_sighting(key) and ours.first_sighting(key)
    # The 4,097th key made the reference forget everything: a duplicate of a key seen one
    # call earlier goes out again. Ours let go of the single oldest key only.
    assert reference.first_sighting(recent) is True
    assert ours.first_sighting(recent) is False
    assert len(ours) == DEDUPE_MAX_KEYS and ours.evicted == 1
    # Memory stays bounded either way; ours forgets exactly the least recently seen key.
    assert ours.first_sighting(keys[0]) is True
    assert ours.first_sighting(keys[2]) is False


def test_bounded_dedupe_through_the_reducer_over_a_long_session() -> None:
    reducer = Reducer(HOST)
    emitted = 0
    for turn in range(3 * DEDUPE_MAX_KEYS):
        for _ in range(3):  # every turn uses the same app three times
            fact = AppUsed(NO_CONNECTION, 0.0, tracking("thread-1", f"turn-{turn}"),
                           AppInvocation("drive", "Google Drive", "implicit"))
            emitted += len(reducer.apply(fact))
    assert emitted == 3 * DEDUPE_MAX_KEYS  # exactly one per turn
    assert len(reducer.apps.apps_used) == DEDUPE_MAX_KEYS
    assert reducer.apps.stats.dedupe_evictions == 2 * DEDUPE_MAX_KEYS


# --- codex_thread_archive_event (from the wire) ----------------------------------------------

CLIENT = (b'{"product_client_id":"codex-tui","client_name":"codex-tui","client_version":"1.0.0",'
          b'"rpc_transport":"stdio","experimental_api_enabled":false}')
RUNTIME = (b'{"codex_rs_version":"0.1.0","runtime_os":"macos","runtime_os_version":"15.3.1",'
           b'"runtime_arch":"aarch64"}')


def _thread_result(thread_id: str, source: str, parent: str | None) -> bytes:
    parent_json = f'"{parent}"' if parent else "null"
    return (f'{{"thread":{{"id":"{thread_id}","sessionId":"session-{thread_id}",'
            f'"parentThreadId":{parent_json},"ephemeral":false,"createdAt":1,'
            f'"source":"exec","threadSource":{source},"turns":[]}},"model":"gpt-5"}}').encode()


def _archive(method: str, thread_id: str, emitted_at_ms: int) -> tuple[str, bytes]:
    return ("s2c", f'{{"method":"{method}","params":{{"threadId":"{thread_id}"}},'
                   f'"emittedAtMs":{emitted_at_ms}}}'.encode())


def test_thread_archive_events_from_the_wire() -> None:
    # reference: the archive part of its thread-lifecycle reducer test (connection 7,
    # client codex-tui 1.0.0; a thread with threadSource "user", one with a parent thread
    # and no source, one the reducer never saw).
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio", 7)
    lines = [
        ("c2s", b'{"id":0,"method":"initialize","params":{"clientInfo":{"name":"codex-tui",'
                b'"version":"1.0.0"},"capabilities":{"experimentalApi":false}}}'),
        ("s2c", b'{"id":0,"result":{"userAgent":"codex-tui/0.1.0 (Mac OS 15.3.1; arm64) t",'
                b'"platformOs":"macos"}}'),
        ("c2s", b'{"id":1,"method":"thread/start","params":{}}'),
        ("s2c", b'{"id":1,"result":' + _thread_result("thread-work", '"user"', None) + b"}"),
        ("c2s", b'{"id":2,"method":"thread/resume","params":{"threadId":"thread-private"}}'),
        ("s2c", b'{"id":2,"result":' + _thread_result(
            "thread-private", "null", "019ee5cf-4d15-77a2-8023-01a9f79b6e7d") + b"}"),
        _archive("thread/archived", "thread-work", 1_795_607_174_353),
        _archive("thread/unarchived", "thread-work", 1_795_607_174_999),
        _archive("thread/archived", "thread-private", 1_795_607_175_000),
        _archive("thread/unarchived", "thread-without-context", 1_795_607_175_001),
    ]
    events = []
    for index, (direction, line) in enumerate(lines):
        now = 1_795_607_174.0 + index / 1000  # the tap's clock: ms 0, 1, 2, ...
        events += analyzer.feed_line(connection, direction, line, now)  # type: ignore[arg-type]
    archives = [encode_event(e) for e in events
                if type(e).__struct_config__.tag == "codex_thread_archive_event"]
    head = b'{"event_type":"codex_thread_archive_event","event_params":'
    assert archives == [
        head + b'{"thread_id":"thread-work","action":"archived","occurred_at_ms":1795607174006,'
        b'"app_server_client":' + CLIENT + b',"runtime":' + RUNTIME
        + b',"thread_source":"user"}}',
        head + b'{"thread_id":"thread-work","action":"unarchived",'
        b'"occurred_at_ms":1795607174007,"app_server_client":' + CLIENT + b',"runtime":'
        + RUNTIME + b',"thread_source":"user"}}',
        head + b'{"thread_id":"thread-private","action":"archived",'
        b'"occurred_at_ms":1795607174008,"app_server_client":' + CLIENT + b',"runtime":'
        + RUNTIME + b',"parent_thread_id":"019ee5cf-4d15-77a2-8023-01a9f79b6e7d"}}',
        head + b'{"thread_id":"thread-without-context","action":"unarchived",'
        b'"occurred_at_ms":1795607174009}}',
    ]
    assert analyzer.reducer.apps.stats.archives_without_thread == 1


def test_archive_of_a_recorded_session_thread() -> None:
    # The real 0.169.0 session (fakeauth_full_flow), then an archive of its first thread.
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio", 0)
    for direction, line in wire_lines("fakeauth_full_flow"):
        analyzer.feed_line(connection, direction, line, 1_795_607_174.5)  # type: ignore[arg-type]
    direction, line = _archive("thread/archived", "01a21287-1c84-7ee1-a8f6-7acf558e5cbc", 0)
    (event,) = analyzer.feed_line(connection, direction, line, 1_795_607_180.25)  # type: ignore[arg-type]
    assert encode_event(event) == (
        b'{"event_type":"codex_thread_archive_event","event_params":{"thread_id":'
        b'"01a21287-1c84-7ee1-a8f6-7acf558e5cbc","action":"archived",'
        b'"occurred_at_ms":1795607180250,"app_server_client":{"product_client_id":"probe",'
        b'"client_name":"probe","client_version":"0.0.1","rpc_transport":"stdio",'
        b'"experimental_api_enabled":true},"runtime":{"codex_rs_version":"0.169.0",'
        b'"runtime_os":"linux","runtime_os_version":"12.0.0","runtime_arch":"x86_64"}}}'
    )


def test_archive_prefers_the_notification_time_when_the_tap_supplies_it() -> None:
    fact = ThreadArchiveChanged(0, 1.5, "t", "archived", 1_795_607_174_353)
    assert reduce(fact) == [
        b'{"event_type":"codex_thread_archive_event","event_params":{"thread_id":"t",'
        b'"action":"archived","occurred_at_ms":1795607174353}}'
    ]
