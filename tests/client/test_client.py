"""AnalyticsEventsClient with an in-memory delivery: same events as the proxy, never blocking,
never raising, bounded, disabled means inert, flush and close keep their deadlines."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codex_rpc_analytics.client import (
    AnalyticsEventsClient,
    AppInvocation,
    PluginTelemetryMetadata,
    SkillInvocation,
    TrackEventsContext,
)
from codex_rpc_analytics.core.views import (
    InitializeParams,
    InitializeResult,
    ThreadResult,
    decode_view,
)
from tests.client.helpers import ListDelivery, recorded_exchanges
from tests.support import recorded_events, returns_within

SESSION = "fakeauth_full_flow"
TURN = TrackEventsContext("thread-1", "turn-1", "gpt-5", "codex_work_desktop")


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition another thread makes true (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.001)


@pytest.fixture
def delivery() -> ListDelivery:
    return ListDelivery()


@pytest.fixture
def client(delivery: ListDelivery) -> Iterator[AnalyticsEventsClient]:
    client = AnalyticsEventsClient(delivery, close_at_exit=False)
    yield client
    client.close(2)


def _replay_session(client: AnalyticsEventsClient, *, typed: bool = False) -> None:
    """What a Python app-server would report for the recorded session: its initialize and
    thread answers, as the raw JSON it read and wrote (or as decoded views)."""
    for exchange in recorded_exchanges(SESSION):
        if exchange.method == "initialize":
            if typed:
                client.track_initialize(
                    0, decode_view(exchange.params, InitializeParams),  # type: ignore[arg-type]
                    decode_view(exchange.result, InitializeResult))
            else:
                client.track_initialize(0, exchange.params, exchange.result.decode())
        else:
            result = (decode_view(exchange.result, ThreadResult) if typed
                      else exchange.result)
            client.track_response(0, exchange.method, result,  # type: ignore[arg-type]
                                  params=exchange.params)


@pytest.mark.parametrize("typed", [False, True], ids=["raw-json", "views"])
def test_initialize_and_thread_responses_give_the_proxys_events(
    client: AnalyticsEventsClient, delivery: ListDelivery, typed: bool
) -> None:
    _replay_session(client, typed=typed)
    assert client.flush(5).complete
    # Byte-identical to what codex 0.169.0 sent (new, resumed, forked, new), as the proxy.
    assert delivery.payloads("codex_thread_initialized") == recorded_events(
        SESSION, "codex_thread_initialized")
    status = client.status()
    # turn/start answers are not tracked by the client: ignored, counted.
    assert status.ignored == sum(e.method == "turn/start" for e in recorded_exchanges(SESSION))
    assert status.ignored > 0
    assert (status.failed, status.dropped) == (0, 0)


def test_thread_response_before_initialize_gives_nothing(
    client: AnalyticsEventsClient, delivery: ListDelivery
) -> None:
    start = next(e for e in recorded_exchanges(SESSION) if e.method == "thread/start")
    client.track_response(5, "thread/start", start.result)
    assert client.flush(5).complete
    assert delivery.events == []
    assert client.status().reducer.thread_responses_without_initialize == 1


def test_archive_notification_names_the_threads_client(
    client: AnalyticsEventsClient, delivery: ListDelivery
) -> None:
    _replay_session(client)
    thread_id = "01a21287-1c84-7ee1-a8f6-7acf558e5cbc"
    before = time.time()
    client.track_notification(0, "thread/archived", f'{{"threadId":"{thread_id}"}}')
    client.track_notification(0, "thread/closed", b"{}")  # not an analytics notification
    assert client.flush(5).complete
    (archive,) = delivery.payloads("codex_thread_archive_event")
    assert archive.startswith(
        b'{"event_type":"codex_thread_archive_event","event_params":{"thread_id":"'
        + thread_id.encode() + b'","action":"archived","occurred_at_ms":')
    assert archive.endswith(
        b',"app_server_client":{"product_client_id":"probe","client_name":"probe",'
        b'"client_version":"0.0.1","rpc_transport":"stdio","experimental_api_enabled":true},'
        b'"runtime":{"codex_rs_version":"0.169.0","runtime_os":"linux",'
        b'"runtime_os_version":"12.0.0","runtime_arch":"x86_64"}}}')
    occurred = int(archive.split(b'"occurred_at_ms":')[1].split(b",")[0])
    assert before * 1000 - 1 <= occurred <= time.time() * 1000 + 1


def test_every_track_call_gives_its_event(
    client: AnalyticsEventsClient, delivery: ListDelivery
) -> None:
    plugin = PluginTelemetryMetadata("sample@test")
    client.track_skill_invocations(TURN, [SkillInvocation("doc", "/nonexistent/doc/SKILL.md")])
    client.track_app_mentioned(TURN, [AppInvocation("calendar", "Calendar", "explicit")])
    client.track_app_used(TURN, AppInvocation("drive", "Google Drive", "implicit"))
    client.track_plugin_used(TURN, plugin)
    client.track_plugin_installed(plugin)
    client.track_plugin_uninstalled(plugin)
    client.track_plugin_enabled(plugin)
    client.track_plugin_disabled(plugin)
    # Empty lists are no calls at all, as in the reference.
    client.track_skill_invocations(TURN, [])
    client.track_app_mentioned(TURN, iter(()))
    assert client.flush(5).complete
    assert [event_type for event_type, _ in delivery.events] == [
        "skill_invocation", "codex_app_mentioned", "codex_app_used", "codex_plugin_used",
        "codex_plugin_installed", "codex_plugin_uninstalled", "codex_plugin_enabled",
        "codex_plugin_disabled",
    ]
    assert client.status().events == 8


def test_app_and_plugin_use_are_reported_once_per_turn(
    client: AnalyticsEventsClient, delivery: ListDelivery
) -> None:
    app = AppInvocation("drive", "Google Drive", "implicit")
    plugin = PluginTelemetryMetadata("sample@test")
    for _ in range(3):
        client.track_app_used(TURN, app)
        client.track_plugin_used(TURN, plugin)
    next_turn = TrackEventsContext("thread-1", "turn-2", "gpt-5")
    client.track_app_used(next_turn, app)
    client.track_plugin_used(next_turn, plugin)
    assert client.flush(5).complete
    assert len(delivery.payloads("codex_app_used")) == 2
    assert len(delivery.payloads("codex_plugin_used")) == 2
    apps = client.status().apps
    assert (apps.apps_used_duplicates, apps.plugins_used_duplicates) == (2, 2)


def test_originator_is_the_first_clients_name_unless_given(delivery: ListDelivery) -> None:
    plugin = PluginTelemetryMetadata("sample@test")
    for originator, expected in [(None, b"probe"), ("my_host", b"my_host")]:
        delivery.events.clear()
        client = AnalyticsEventsClient(delivery, originator=originator, close_at_exit=False)
        client.track_plugin_installed(plugin)  # before any initialize: codex's default
        _replay_session(client)
        client.track_plugin_installed(plugin)
        client.close(5)
        first, second = delivery.payloads("codex_plugin_installed")
        default = b"codex_cli_rs" if originator is None else expected
        assert first.endswith(b'"product_client_id":"' + default + b'"}}')
        assert second.endswith(b'"product_client_id":"' + expected + b'"}}')


def test_skill_paths_are_canonicalised_like_the_reference(
    client: AnalyticsEventsClient, delivery: ListDelivery, tmp_path: Path
) -> None:
    real_repo = tmp_path / "real-repo"
    skill = real_repo / ".codex" / "skills" / "doc" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("# doc\n")
    link = tmp_path / "link-repo"
    os.symlink(real_repo, link)
    url = "https://example.com/repo.git"
    client.track_skill_invocations(TURN, [
        # Through a symlink to the repo: canonicalised, then relative to the (real) root.
        SkillInvocation("doc", str(link / ".codex/skills/doc/SKILL.md"), "repo",
                        repo_url=url, repo_root=str(link)),
        # A personal skill that does not exist: kept as given (canonicalize fails).
        SkillInvocation("doc", "/Users/abc/.codex/skills/doc/SKILL.md"),
    ])
    assert client.flush(5).complete
    repo_event, personal_event = delivery.payloads("skill_invocation")
    repo_id = hashlib.sha1(f"repo_{url}_.codex/skills/doc/SKILL.md_doc".encode()).hexdigest()
    personal_id = hashlib.sha1(b"personal_/Users/abc/.codex/skills/doc/SKILL.md_doc").hexdigest()
    assert b'"skill_id":"' + repo_id.encode() + b'"' in repo_event
    assert b'"skill_id":"' + personal_id.encode() + b'"' in personal_event


def test_bad_input_never_raises_and_is_counted(
    client: AnalyticsEventsClient, delivery: ListDelivery, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-must-not-be-logged"
    client.track_initialize(1, b"not json " + secret.encode(), b"{}")
    client.track_initialize(1, b"{}", b"{}", transport="carrier-pigeon")  # type: ignore[arg-type]
    client.track_response(1, "thread/start", b'["wrong shape"]')
    client.track_notification(1, "thread/archived", b'{"threadId": 7}')
    client.track_app_used(None, None)  # type: ignore[arg-type]
    client.track_skill_invocations(TURN, 42)  # type: ignore[arg-type]
    client.track_plugin_installed("sample@test")  # type: ignore[arg-type]
    client.track_app_used(TURN, AppInvocation("drive"))  # still works afterwards
    assert client.flush(5).complete
    assert delivery.payloads() == delivery.payloads("codex_app_used") and len(delivery.events) == 1
    assert client.status().failed == 7
    assert secret not in caplog.text


def test_full_queue_drops_counts_and_warns_once_without_blocking(
    delivery: ListDelivery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="codex_rpc_analytics.client")
    delivery.gate = threading.Event()  # the worker is stuck in submit
    client = AnalyticsEventsClient(delivery, max_queued_facts=10, close_at_exit=False)
    client.track_app_used(TURN, AppInvocation("first"))
    _wait_until(lambda: client.status().queued == 0)  # the worker took it and is stuck
    # The worker stays stuck until every call returned: a call that waited for room in the
    # queue would wait forever (the 60 s join only turns that hang into a failure). What a
    # call costs: `make bench` (client).
    returns_within(lambda: [client.track_app_used(TURN, AppInvocation(f"c{i}"))
                            for i in range(100)])
    assert (client.status().queued, client.status().dropped) == (10, 90)
    delivery.gate.set()
    assert client.flush(5).complete
    assert len(delivery.events) == 11
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1 and "90 dropped" in warnings[0].getMessage()
    client.close(5)


def test_flush_and_close_keep_their_deadline_when_the_worker_is_stuck(
    delivery: ListDelivery,
) -> None:
    delivery.gate = threading.Event()
    client = AnalyticsEventsClient(delivery, close_at_exit=False)
    client.track_app_used(TURN, AppInvocation("a"))
    _wait_until(lambda: client.status().queued == 0)  # the worker took it and is stuck
    client.track_app_used(TURN, AppInvocation("c"))
    # The worker stays stuck throughout: a flush or close that waited for it instead of its
    # deadline would never return (the 60 s bound only turns that hang into a failure).
    try:
        result = returns_within(lambda: client.flush(0.2))
        assert not result.complete and result.unreduced >= 1
        closed = returns_within(lambda: client.close(0.2))
        assert not closed.complete
    finally:
        delivery.gate.set()


def test_close_reduces_what_is_queued_then_ignores_later_calls(delivery: ListDelivery) -> None:
    client = AnalyticsEventsClient(delivery, owns_delivery=True, close_at_exit=False)
    for i in range(100):
        client.track_app_used(TURN, AppInvocation(f"c{i}"))
    result = client.close(5)
    assert result.complete and delivery.closed and len(delivery.events) == 100
    client.track_app_used(TURN, AppInvocation("late"))
    assert client.close(5) is result
    status = client.status()
    assert (status.running, status.dropped, len(delivery.events)) == (False, 1, 100)


def test_disabled_client_is_inert() -> None:
    threads = threading.active_count()
    client = AnalyticsEventsClient.disabled()
    assert threading.active_count() == threads and not client.enabled
    client.track_initialize(0, b"{}", b"{}")
    client.track_app_used(TURN, AppInvocation("drive"))
    client.track_plugin_installed(PluginTelemetryMetadata("sample@test"))
    assert client.flush(1).complete and client.close(1).complete
    status = client.status()
    assert (status.enabled, status.queued, status.reduced, status.dropped) == (False, 0, 0, 0)


def test_enabled_false_does_not_use_the_delivery(delivery: ListDelivery) -> None:
    client = AnalyticsEventsClient(delivery, enabled=False)
    client.track_app_used(TURN, AppInvocation("drive"))
    assert client.flush(1).complete and delivery.events == [] and delivery.flushes == 0


def test_open_follows_codex_analytics_opt_out(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text("[analytics]\nenabled = false\n")
    client = AnalyticsEventsClient.open(codex_home=home, state_dir=tmp_path / "state")
    assert not client.enabled and not (tmp_path / "state").exists()
    (home / "config.toml").write_text("[analytics\n")  # unreadable: treated as an opt-out
    assert not AnalyticsEventsClient.open(codex_home=home, state_dir=tmp_path / "s").enabled


def test_open_writes_to_a_jsonl_sink(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    with AnalyticsEventsClient.open(sinks=[f"jsonl:{out}"], state_dir=tmp_path / "state",
                                    codex_home=tmp_path / "home", close_at_exit=False) as client:
        client.track_app_used(TURN, AppInvocation("drive", "Google Drive", "implicit"))
    assert out.read_bytes() == (
        b'{"event_type":"codex_app_used","event_params":{"connector_id":"drive",'
        b'"thread_id":"thread-1","turn_id":"turn-1","app_name":"Google Drive",'
        b'"product_client_id":"codex_work_desktop","invoke_type":"implicit",'
        b'"model_slug":"gpt-5"}}\n'
    )


async def test_calls_and_flush_from_asyncio_code(
    client: AnalyticsEventsClient, delivery: ListDelivery
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    delivery.gate = threading.Event()
    task = asyncio.create_task(ticker())
    client.track_app_used(TURN, AppInvocation("drive"))
    asyncio.get_running_loop().call_later(0.1, delivery.gate.set)
    result = await client.flush_async(5)
    task.cancel()
    assert result.complete and len(delivery.events) == 1
    assert ticks > 10  # the loop kept running while the flush waited
