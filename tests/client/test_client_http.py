"""Many host threads tracking at once while a real loopback collector is slow.

The client shares the delivery layer with the proxy: a real ``Delivery`` (SQLite outbox, the
HTTP sink) POSTs to an aiohttp server on 127.0.0.1 that takes 50 ms per request. Every event
must arrive exactly once, and no ``track_*`` call may hold its caller for a millisecond.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web

from codex_rpc_analytics.client import (
    AnalyticsEventsClient,
    AppInvocation,
    PluginCapabilitySummary,
    PluginTelemetryMetadata,
    SkillInvocation,
    TrackEventsContext,
)
from codex_rpc_analytics.core.app_facts import (
    NO_CONNECTION,
    AppsMentioned,
    AppUsed,
    PluginStateChanged,
    PluginUsed,
    SkillsInvoked,
)
from codex_rpc_analytics.core.events import encode_event
from codex_rpc_analytics.core.facts import Fact
from codex_rpc_analytics.core.reducer import Reducer
from codex_rpc_analytics.delivery import Delivery, RetryPolicy, parse_sink_spec
from codex_rpc_analytics.host import host_runtime
from tests.client.helpers import ACCESS_TOKEN, ACCOUNT_ID, write_chatgpt_auth

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

THREADS = 8
CALLS_PER_THREAD = 300
COLLECTOR_DELAY_S = 0.05
_BODY = msgspec.json.Decoder(dict[str, list[msgspec.Raw]])


class SlowCollector:
    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.requests = 0
        self.in_flight_max = 0
        self._in_flight = 0
        self.headers: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self._in_flight += 1
        self.in_flight_max = max(self.in_flight_max, self._in_flight)
        await asyncio.sleep(COLLECTOR_DELAY_S)
        self._in_flight -= 1
        self.requests += 1
        self.headers.append(dict(request.headers))
        self.events.extend(bytes(raw) for raw in _BODY.decode(body)["events"])
        return web.json_response({})


def _calls(worker: int) -> list[tuple[Callable[[AnalyticsEventsClient], None], Fact | None]]:
    """One host thread's calls, each with the fact the pure reducer would get (None for a
    call that must give nothing: a duplicate)."""
    plugin = PluginTelemetryMetadata(
        f"plugin-{worker}@market",
        capability_summary=PluginCapabilitySummary(True, ["mcp-1"], ["drive"]),
    )
    calls: list[tuple[Callable[[AnalyticsEventsClient], None], Fact | None]] = []
    for i in range(CALLS_PER_THREAD):
        turn = TrackEventsContext(f"thread-{worker}", f"turn-{worker}-{i}", "gpt-5", "host")
        app = AppInvocation(f"connector-{i % 7}", "App", "implicit")
        skill = SkillInvocation("doc", f"/nonexistent/{worker}/{i}/SKILL.md")
        kind = i % 6
        if kind == 0:
            calls.append((lambda c, t=turn, a=app: c.track_app_used(t, a),
                          AppUsed(NO_CONNECTION, 0, turn, app)))
            # The same app in the same turn: de-duplicated, no event.
            calls.append((lambda c, t=turn, a=app: c.track_app_used(t, a), None))
        elif kind == 1:
            calls.append((lambda c, t=turn: c.track_plugin_used(t, plugin),
                          PluginUsed(NO_CONNECTION, 0, turn, plugin)))
        elif kind == 2:
            calls.append((lambda c, t=turn, s=skill: c.track_skill_invocations(t, [s]),
                          SkillsInvoked(NO_CONNECTION, 0, turn, (skill,))))
        elif kind == 3:
            calls.append((lambda c, t=turn, a=app: c.track_app_mentioned(t, [a]),
                          AppsMentioned(NO_CONNECTION, 0, turn, (app,))))
        else:
            # Plugin state events carry no turn: make each one distinct by its plugin.
            state_plugin = PluginTelemetryMetadata(f"p-{worker}-{i}@market")
            if kind == 4:
                calls.append((lambda c, p=state_plugin: c.track_plugin_installed(p),
                              PluginStateChanged(NO_CONNECTION, 0, state_plugin, "installed")))
            else:
                calls.append((lambda c, p=state_plugin: c.track_plugin_disabled(p),
                              PluginStateChanged(NO_CONNECTION, 0, state_plugin, "disabled")))
    return calls


def _expected(plans: list[list[tuple[Any, Fact | None]]]) -> collections.Counter[bytes]:
    reducer = Reducer(host_runtime())
    reducer.apps.originator = "host"
    return collections.Counter(
        encode_event(event)
        for plan in plans for _, fact in plan if fact is not None
        for event in reducer.apply(fact)
    )


async def test_concurrent_threads_slow_collector_every_event_once_no_call_blocks(
    aiohttp_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    collector = SlowCollector()
    app = web.Application()
    app.router.add_post("/{tail:.*}", collector.handle)
    server = await aiohttp_server(app)
    delivery = Delivery(
        state_dir=tmp_path / "state",
        sinks=[parse_sink_spec(f"http://127.0.0.1:{server.port}/backend-api/")],
        codex_home=write_chatgpt_auth(tmp_path / "codex-home"),
        batch_max_events=50,  # many requests, so the collector's slowness really shows
        batch_linger_s=0.01,
        retry_policy=RetryPolicy(base_s=0.02, cap_s=0.1, timeout_total_s=10.0),
        logger=logging.getLogger("test.client.delivery"),
    )
    delivery.start()
    client = AnalyticsEventsClient(delivery, originator="host", owns_delivery=True,
                                   close_at_exit=False)

    plans = [_calls(worker) for worker in range(THREADS)]
    durations: list[list[int]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def host_thread(worker: int) -> None:
        record = durations[worker].append
        clock = time.perf_counter_ns
        start.wait()
        for call, _ in plans[worker]:
            began = clock()
            call(client)
            record(clock() - began)
            time.sleep(0.0002)  # a host does other work between calls

    gc.collect()
    threads = [threading.Thread(target=host_thread, args=(w,)) for w in range(THREADS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    await asyncio.to_thread(lambda: [thread.join() for thread in threads])
    calls_done = time.monotonic() - began

    result = await client.flush_async(60)
    delivered = time.monotonic() - began
    await client.close_async(10)

    assert result.complete, result
    expected = _expected(plans)
    received = collections.Counter(collector.events)
    assert received == expected  # every event, none missing, none extra
    assert set(received.values()) == {1}  # each exactly once
    assert sum(expected.values()) == THREADS * CALLS_PER_THREAD

    all_durations = sorted(d for per_thread in durations for d in per_thread)
    slowest_ms = all_durations[-1] / 1e6
    status = client.status()
    print(
        f"\n{len(all_durations)} calls on {THREADS} threads: median "
        f"{statistics.median(all_durations) / 1000:.1f} us, p99 "
        f"{all_durations[int(len(all_durations) * 0.99)] / 1000:.1f} us, max {slowest_ms:.3f} ms;"
        f" calls done in {calls_done:.2f} s, all delivered after {delivered:.2f} s in "
        f"{collector.requests} requests of >= {COLLECTOR_DELAY_S * 1000:.0f} ms"
    )
    assert slowest_ms < 1.0, f"a track_* call held its caller {slowest_ms:.3f} ms"
    # The collector really was the bottleneck, and the callers never waited for it.
    assert collector.requests >= sum(expected.values()) // 50
    assert delivered > calls_done + 5 * COLLECTOR_DELAY_S
    assert (status.dropped, status.failed) == (0, 0)
    assert status.apps.apps_used_duplicates == THREADS * len(range(0, CALLS_PER_THREAD, 6))
    # A collector of ours never gets the ChatGPT login (it has no token configured here), and
    # the credentials never reach the log either.
    assert "Authorization" not in collector.headers[0]
    assert "chatgpt-account-id" not in collector.headers[0]
    assert ACCESS_TOKEN not in caplog.text and ACCOUNT_ID not in caplog.text
