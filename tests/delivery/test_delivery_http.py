"""Delivery to a real aiohttp collector on 127.0.0.1: retries, rejects, gating, batching."""

from __future__ import annotations

import asyncio
import io
import logging
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest

from codex_rpc_analytics.delivery import (
    Delivery,
    Outbox,
    RetryPolicy,
    flush_command,
    parse_sink_spec,
)
from codex_rpc_analytics.store import stats_command
from tests.delivery.support import (
    ACCESS_TOKEN,
    ACCOUNT_ID,
    API_KEY,
    EVENTS_PATH,
    Collector,
    Received,
    free_port,
    make_event,
    outbox_rows,
    wait_until,
    write_chatgpt_auth,
)

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")


def _delivery(
    state_dir: Path, url: str, codex_home: Path, policy: RetryPolicy, **kw: Any
) -> Delivery:
    kw.setdefault("batch_linger_s", 0.05)
    return Delivery(
        state_dir=state_dir,
        sinks=[parse_sink_spec(url)],
        codex_home=codex_home,
        retry_policy=policy,
        logger=logging.getLogger("test.delivery"),
        **kw,
    )


def codex_sink_at(codex_home: Path, base_url: str) -> str:
    """Point codex's own ``chatgpt_base_url`` at a loopback collector; the ``codex`` sink
    (the only one that carries the ChatGPT login) then posts there."""
    (codex_home / "config.toml").write_text(f'chatgpt_base_url = "{base_url}"\n')
    return "codex"


def _assert_no_secret(caplog: pytest.LogCaptureFixture, *texts: str) -> None:
    blob = caplog.text + "".join(texts)
    assert ACCESS_TOKEN not in blob
    assert ACCOUNT_ID not in blob


async def test_codex_sink_refused_then_503_then_429_then_200_delivers_each_event_once(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    url = codex_sink_at(codex_home, f"http://127.0.0.1:{port}/backend-api/")
    delivery = _delivery(state_dir, url, codex_home, fast_policy)
    delivery.start()
    events = [make_event(i) for i in range(10)]
    delivery.submit(events)

    # Nothing listens yet: the first attempts are refused and counted, nothing is lost.
    await wait_until(lambda: delivery.status().sinks[0].failed_attempts >= 2)
    assert "Connect" in (delivery.status().sinks[0].last_error or "")

    collector.script = [(503, {}), (429, {"Retry-After": "1"})]
    await aiohttp_server(collector.app(), port=port)
    result = await delivery.flush_async(10)
    assert result.complete, result

    statuses = [r.status for r in collector.requests]
    assert statuses == [503, 429, 200]
    first, rate_limited, accepted = collector.requests
    # Retry-After (capped at 0.3 s by the policy) is a minimum wait.
    assert accepted.at - rate_limited.at >= 0.29
    # The same batch every time: same ids, same idempotency key, same bytes.
    assert first.ids == rate_limited.ids == accepted.ids
    assert first.headers["Idempotency-Key"] == accepted.headers["Idempotency-Key"]
    assert first.body == accepted.body

    stored = outbox_rows(state_dir, "SELECT event_id FROM events ORDER BY seq")
    assert collector.accepted_ids() == [r[0] for r in stored]
    assert accepted.path == EVENTS_PATH
    assert accepted.body == b'{"events":[' + b",".join(p for _, p in events) + b"]}"
    headers = accepted.headers
    assert headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert headers["chatgpt-account-id"] == ACCOUNT_ID
    assert headers["Content-Type"] == "application/json"
    assert headers["originator"] == "probe"
    assert headers["User-Agent"].startswith("codex-rpc-analytics/")
    assert "Accept-Encoding" not in headers
    assert "Transfer-Encoding" not in headers and headers["Content-Length"] == str(
        len(accepted.body)
    )

    status = delivery.status()
    sink = status.sinks[0]
    assert (sink.delivered, sink.pending, sink.rejected) == (10, 0, 0)
    assert sink.failed_attempts >= 4
    final = await delivery.close_async(5)
    assert final.complete and final.sinks[url].delivered == 10
    encoded = msgspec.json.encode(status).decode()
    _assert_no_secret(caplog, encoded, repr(status))


async def test_collector_down_all_session_gets_everything_from_a_later_flush(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/backend-api/"
    first = _delivery(state_dir, url, codex_home, fast_policy)
    first.start()
    events = [make_event(i, client="a" if i % 3 else "b") for i in range(12)]
    first.submit(events)
    await wait_until(lambda: first.status().sinks[0].failed_attempts >= 1)
    # The sink retries every 0.1 s at most, forever: a close without its hard deadline would
    # never return (the 60 s bound only turns that hang into a failure).
    down = await asyncio.wait_for(first.close_async(0.3), 60)
    assert not down.complete and down.sinks[url].pending == 12

    await aiohttp_server(collector.app(), port=port)
    out, err = io.StringIO(), io.StringIO()
    # No --sink given: the sinks with pending events are rebuilt from their keys.
    code = await asyncio.to_thread(flush_command, state_dir, [], codex_home, 5.0, out=out, err=err)
    assert code == 0, out.getvalue() + err.getvalue()
    assert f"{url}: delivered 12, pending 0, rejected 0" in out.getvalue()
    stored = outbox_rows(state_dir, "SELECT event_id FROM events")
    assert sorted(collector.accepted_ids()) == sorted(r[0] for r in stored)
    for request in collector.accepted:
        clients = {
            msgspec.json.decode(request.body)["events"][i]["event_params"]["app_server_client"][
                "product_client_id"
            ]
            for i in range(len(request.ids))
        }
        assert clients == {request.headers["originator"]}
    _assert_no_secret(caplog, out.getvalue(), err.getvalue())


async def test_400_parks_the_batch_as_rejected_and_stats_show_it(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await aiohttp_server(collector.app())
    url = f"http://127.0.0.1:{server.port}/backend-api/"
    collector.script = [(400, {})]
    delivery = _delivery(state_dir, url, codex_home, fast_policy)
    delivery.start()
    delivery.submit([make_event(i) for i in range(5)])
    result = await delivery.flush_async(5)
    assert result.sinks[url].rejected == 5 and result.sinks[url].pending == 0
    assert len(collector.requests) == 1  # never retried
    sink = delivery.status().sinks[0]
    assert sink.rejected == 5 and sink.last_error is not None and "HTTP 400" in sink.last_error
    await delivery.close_async(2)
    assert outbox_rows(state_dir, "SELECT DISTINCT state, attempts FROM deliveries") == [
        ("rejected", 1)
    ]
    out = io.StringIO()
    # stats runs its own event loop, as the command line does: off this test's loop.
    assert await asyncio.to_thread(stats_command, state_dir, out) == 0
    assert f"{url}: delivered 0, pending 0, rejected 5" in out.getvalue()
    assert any("rejected 5 events" in r.getMessage() for r in caplog.records)
    _assert_no_secret(caplog, out.getvalue())


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ("[analytics]\nenabled = false\n", "enabled = false"),
        ('profile = "p"\n[profiles.p.analytics]\nenabled = false\n', "enabled = false"),
        ("[analytics\n", "counts as an opt-out"),
    ],
)
async def test_codex_opt_out_is_total_no_sink_sends_and_one_warning(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    config: str,
    reason: str,
) -> None:
    server = await aiohttp_server(collector.app())
    team = f"http://127.0.0.1:{server.port}/team/"
    codex = codex_sink_at(codex_home, f"http://127.0.0.1:{server.port}/backend-api/")
    (codex_home / "config.toml").write_text((codex_home / "config.toml").read_text() + config)
    local = tmp_path / "events.jsonl"
    delivery = Delivery(
        state_dir=state_dir,
        sinks=[parse_sink_spec(s) for s in (codex, team, f"jsonl:{local}")],
        codex_home=codex_home,
        retry_policy=fast_policy,
        batch_linger_s=0.05,
        logger=logging.getLogger("test.delivery"),
    )
    delivery.start()
    delivery.submit([make_event(i) for i in range(3)])
    delivery.submit([make_event(i) for i in range(3, 6)])
    await wait_until(lambda: delivery.status().committed == 6)
    result = await delivery.close_async(2)
    assert collector.requests == [] and not local.exists()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and reason in warnings[0].getMessage()
    status = delivery.status()
    # Recorded locally (the user's own stats), shipped nowhere, owed to no sink later.
    assert status.committed == 6
    assert all(not s.enabled and reason in (s.disabled_reason or "") for s in status.sinks)
    assert result.complete  # nothing is owed to a disabled sink
    assert outbox_rows(state_dir, "SELECT COUNT(*) FROM events") == [(6,)]
    assert outbox_rows(state_dir, "SELECT COUNT(*) FROM deliveries") == [(0,)]
    _assert_no_secret(caplog)


@pytest.mark.parametrize(("auth", "reason"), [("apikey", "API key"), ("none", "not logged in")])
async def test_api_key_or_no_login_stops_only_the_codex_sink_not_a_team_collector(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
    auth: str,
    reason: str,
) -> None:
    if auth == "apikey":
        (codex_home / "auth.json").write_text(
            f'{{"OPENAI_API_KEY":"{API_KEY}","auth_mode":"apikey"}}'
        )
    else:
        (codex_home / "auth.json").unlink()
    server = await aiohttp_server(collector.app())
    team = f"http://127.0.0.1:{server.port}/team/"
    codex = codex_sink_at(codex_home, f"http://127.0.0.1:{server.port}/backend-api/")
    delivery = Delivery(
        state_dir=state_dir,
        sinks=[parse_sink_spec(codex), parse_sink_spec(team)],
        codex_home=codex_home,
        retry_policy=fast_policy,
        batch_linger_s=0.05,
        logger=logging.getLogger("test.delivery"),
    )
    delivery.start()
    delivery.submit([make_event(i) for i in range(4)])
    result = await delivery.flush_async(5)
    await delivery.close_async(2)
    assert result.complete and result.sinks[team].delivered == 4
    assert [r.path for r in collector.requests] == ["/team/codex/analytics-events/events"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "codex" in warnings[0] and reason in warnings[0]
    codex_status, team_status = delivery.status().sinks
    assert not codex_status.enabled and team_status.enabled
    assert API_KEY not in caplog.text and API_KEY not in repr(collector.requests)
    _assert_no_secret(caplog)


async def test_batches_by_count_and_by_bytes(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
) -> None:
    server = await aiohttp_server(collector.app())
    url = f"http://127.0.0.1:{server.port}/backend-api/"
    by_count = _delivery(state_dir, url, codex_home, fast_policy, batch_max_events=10)
    by_count.start()
    by_count.submit([make_event(i) for i in range(25)])
    await by_count.flush_async(5)
    assert [len(r.ids) for r in collector.requests] == [10, 10, 5]
    await by_count.close_async(2)

    collector.requests.clear()
    events = [make_event(i, pad=1000) for i in range(7)]
    size = len(events[0][1])
    max_bytes = len(b'{"events":[]}') + 3 * size + 2  # exactly three events and two commas
    by_bytes = _delivery(
        state_dir, url, codex_home, fast_policy, batch_max_bytes=max_bytes
    )
    by_bytes.start()
    by_bytes.submit(events)
    await by_bytes.flush_async(5)
    assert [len(r.ids) for r in collector.requests] == [3, 3, 1]
    assert all(len(r.body) <= max_bytes for r in collector.requests)
    await by_bytes.close_async(2)


async def test_full_batch_leaves_at_once_and_partial_after_linger(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
) -> None:
    server = await aiohttp_server(collector.app())
    url = f"http://127.0.0.1:{server.port}/backend-api/"
    # A linger far beyond the test's patience: only a full batch can explain a request.
    slow = _delivery(
        state_dir, url, codex_home, fast_policy, batch_max_events=5, batch_linger_s=60
    )
    slow.start()
    slow.submit([make_event(i) for i in range(7)])
    await wait_until(lambda: len(collector.requests) == 1)
    assert len(collector.requests[0].ids) == 5
    await slow.close_async(2)  # the 2 left over leave with the closing flush
    assert [len(r.ids) for r in collector.requests] == [5, 2]

    collector.requests.clear()
    quick = _delivery(state_dir, url, codex_home, fast_policy, batch_linger_s=0.05)
    quick.start()
    quick.submit([make_event(i) for i in range(3)])
    await wait_until(lambda: len(collector.requests) == 1)
    assert len(collector.requests[0].ids) == 3
    await quick.close_async(2)


async def test_refreshed_token_is_picked_up_after_a_401(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
) -> None:
    new_token = "refreshed-access-token-0123456789"
    collector.script = [(401, {})]

    def refresh_on_first(request: Received) -> None:
        if len(collector.requests) == 1:  # codex refreshes the token meanwhile
            write_chatgpt_auth(codex_home, access_token=new_token)

    collector.on_request = refresh_on_first
    server = await aiohttp_server(collector.app())
    url = codex_sink_at(codex_home, f"http://127.0.0.1:{server.port}/backend-api/")
    delivery = _delivery(state_dir, url, codex_home, fast_policy)
    delivery.start()
    delivery.submit([make_event(1)])
    assert (await delivery.flush_async(5)).complete
    assert [r.status for r in collector.requests] == [401, 200]
    assert collector.requests[1].headers["Authorization"] == f"Bearer {new_token}"
    await delivery.close_async(2)


async def test_close_has_a_hard_deadline_with_a_dead_collector(
    codex_home: Path, state_dir: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/backend-api/"
    # The next retry is an hour away: a close that waited for it, or ignored its deadline,
    # would not return (the 60 s bound only turns that hang into a failure).
    slow_retries = RetryPolicy(base_s=3600.0, cap_s=3600.0, timeout_connect_s=1.0)
    delivery = _delivery(state_dir, url, codex_home, slow_retries)
    delivery.start()
    delivery.submit([make_event(i) for i in range(4)])
    await wait_until(lambda: delivery.status().sinks[0].failed_attempts >= 1)
    result = await asyncio.wait_for(delivery.close_async(0.5), 60)
    assert result.sinks[url].pending == 4 and not result.complete
    # The leases were released: a new run may send at once.
    leased = "SELECT COUNT(*) FROM deliveries WHERE lease_owner IS NOT NULL"
    assert outbox_rows(state_dir, leased) == [(0,)]


async def test_two_proxies_sharing_a_state_dir_send_each_event_once(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/backend-api/"
    proxies = [_delivery(state_dir, url, codex_home, fast_policy) for _ in range(2)]
    for n, proxy in enumerate(proxies):
        proxy.start()
        proxy.submit([make_event(n * 100 + i) for i in range(30)])
    await wait_until(lambda: all(p.status().committed == 30 for p in proxies))
    # Rows are shared: whichever proxy claims first holds them (leased) while it retries.
    await wait_until(
        lambda: outbox_rows(state_dir, "SELECT COUNT(*) FROM deliveries WHERE attempts > 0")[0][0]
        == 60
    )
    await aiohttp_server(collector.app(), port=port)
    # A proxy's flush does not wait for rows the other one holds; between them, all leave.
    await asyncio.gather(*(p.flush_async(10) for p in proxies))
    await wait_until(lambda: len(collector.accepted_ids()) >= 60)
    for proxy in proxies:
        await proxy.close_async(2)
    assert outbox_rows(state_dir, "SELECT state, COUNT(*) FROM deliveries GROUP BY 1") == [
        ("delivered", 60)
    ]
    stored = [r[0] for r in outbox_rows(state_dir, "SELECT event_id FROM events")]
    assert sorted(collector.accepted_ids()) == sorted(stored) and len(stored) == 60


async def test_codex_form_uses_codex_own_base_url(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv("CODEX_APP_SERVER_CHATGPT_BASE_URL", raising=False)
    server = await aiohttp_server(collector.app())
    (codex_home / "config.toml").write_text(
        f'chatgpt_base_url = "http://127.0.0.1:{server.port}/backend-api/"\n'
    )
    delivery = _delivery(state_dir, "codex", codex_home, fast_policy)
    delivery.start()
    delivery.submit([make_event(1)])
    assert (await delivery.flush_async(5)).sinks["codex"].delivered == 1
    await delivery.close_async(2)
    assert [r.path for r in collector.requests] == [EVENTS_PATH]

    # A plain-http base that is not loopback is refused there too: disabled, one warning.
    (codex_home / "config.toml").write_text('chatgpt_base_url = "http://example.com/api/"\n')
    refused = _delivery(state_dir, "codex", codex_home, fast_policy)
    refused.start()
    await refused.close_async(2)
    assert "loopback" in (refused.status().sinks[0].disabled_reason or "")
    assert sum("loopback" in r.getMessage() for r in caplog.records) == 1


async def test_a_split_batch_never_takes_back_rows_another_process_claimed(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
) -> None:
    """A 413 splits a batch; while the first half is being sent, the rest's lease may expire
    and another process (another proxy, a `flush`) claim it. The splitting sender must then
    leave those rows to their new owner instead of re-leasing and sending them a second time."""
    server = await aiohttp_server(collector.app())
    url = f"http://127.0.0.1:{server.port}/backend-api/"
    delivery = _delivery(state_dir, url, codex_home, fast_policy)
    events = [make_event(i) for i in range(4)]
    collector.script = [(413, {})]
    taken: list[str] = []

    def other_process_claims_the_rest(received: Received) -> None:
        if len(collector.requests) != 2:  # the first half, after the 413
            return
        other = Outbox.open(state_dir)
        try:
            key = delivery.status().sinks[0].key
            # The splitting sender's lease on the second half runs out (as it does when the
            # first half takes retries longer than the lease)...
            marks = ",".join("?" * len(received.ids))
            clock = sqlite3.connect(state_dir / "outbox.sqlite3", timeout=5)
            with clock:
                clock.execute(
                    "UPDATE deliveries SET lease_until = 0 WHERE state = 'pending' AND seq IN"
                    f" (SELECT seq FROM events WHERE event_id NOT IN ({marks}))", received.ids)
            clock.close()
            # ...and another process claims those rows, and delivers them itself.
            batch = other.claim_batch(key, "another-process", max_events=100,
                                      max_body_bytes=1 << 20, lease_s=60,
                                      group_by_originator=True)
            assert batch is not None
            taken.extend(batch.event_ids)
            other.mark_delivered(key, batch.seqs)
        finally:
            other.close()

    collector.on_request = other_process_claims_the_rest
    delivery.start()
    delivery.submit(events)
    assert (await delivery.flush_async(10)).complete
    await delivery.close_async(5)
    first, half = collector.requests[:2]
    assert first.status == 413 and len(half.ids) == 2 and len(taken) == 2
    assert sorted(half.ids + taken) == sorted(first.ids)
    sent_after = [i for r in collector.requests[2:] for i in r.ids]
    assert not set(sent_after) & set(taken), "rows another process claimed were sent again"
    assert outbox_rows(state_dir, "SELECT state, COUNT(*) FROM deliveries GROUP BY 1") == [
        ("delivered", 4)]
