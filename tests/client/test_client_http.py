"""Many host threads tracking at once while a real loopback collector holds every request.

The client shares the delivery layer with the proxy: a real ``Delivery`` (SQLite outbox, the
HTTP sink) POSTs to an aiohttp server on 127.0.0.1. The collector answers nothing until every
host thread has made all its calls: a ``track_*`` call that waited for delivery, the network
or the worker would never return, so the threads finishing at all proves that no call waits
for the collector. Then it answers, and every event must arrive exactly once. What a call costs
its caller is measured by ``make bench`` (the client section), not asserted here.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
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
_BODY = msgspec.json.Decoder(dict[str, list[msgspec.Raw]])


class HeldCollector:
    """Reads each request, then holds it unanswered until ``release`` is set."""

    def __init__(self) -> None:
        self.events: list[bytes] = []
        self.answered = 0
        self.held = 0
        self.headers: list[dict[str, str]] = []
        self.first_held = asyncio.Event()
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.held += 1
        self.first_held.set()
        await self.release.wait()
        self.held -= 1
        self.answered += 1
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


async def test_concurrent_threads_held_collector_every_event_once_no_call_blocks(
    aiohttp_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    collector = HeldCollector()
    app = web.Application()
    app.router.add_post("/{tail:.*}", collector.handle)
    server = await aiohttp_server(app)
    delivery = Delivery(
        state_dir=tmp_path / "state",
        sinks=[parse_sink_spec(f"http://127.0.0.1:{server.port}/backend-api/")],
        codex_home=write_chatgpt_auth(tmp_path / "codex-home"),
        batch_max_events=50,  # many requests once the collector answers
        batch_linger_s=0.01,
        # A held request must not time out and be sent again: the collector would count it
        # twice once it answers both.
        retry_policy=RetryPolicy(base_s=0.02, cap_s=0.1, timeout_total_s=600.0),
        logger=logging.getLogger("test.client.delivery"),
    )
    delivery.start()
    client = AnalyticsEventsClient(delivery, originator="host", owns_delivery=True,
                                   close_at_exit=False)

    plans = [_calls(worker) for worker in range(THREADS)]
    first_call, _ = plans[0][0]
    first_call(client)
    # Delivery is now stuck on a request the collector holds (one in flight per sink).
    await asyncio.wait_for(collector.first_held.wait(), 60)
    start = threading.Barrier(THREADS)

    def host_thread(worker: int) -> None:
        start.wait()
        for call, _ in plans[worker][1 if worker == 0 else 0:]:
            call(client)

    threads = [threading.Thread(target=host_thread, args=(w,), daemon=True)
               for w in range(THREADS)]
    for thread in threads:
        thread.start()
    # Only a call that blocks would keep a thread alive: the bound turns that into a failure.
    await asyncio.wait_for(asyncio.to_thread(lambda: [t.join() for t in threads]), 120)
    assert (collector.answered, collector.held) == (0, 1)  # no call waited for the collector

    collector.release.set()
    result = await client.flush_async(120)
    await client.close_async(10)
    status = client.status()

    assert result.complete, result
    expected = _expected(plans)
    received = collections.Counter(collector.events)
    assert received == expected  # every event, none missing, none extra
    assert set(received.values()) == {1}  # each exactly once
    assert sum(expected.values()) == THREADS * CALLS_PER_THREAD
    assert collector.answered >= sum(expected.values()) // 50
    assert (status.dropped, status.failed) == (0, 0)
    assert status.apps.apps_used_duplicates == THREADS * len(range(0, CALLS_PER_THREAD, 6))
    # A collector of ours never gets the ChatGPT login (it has no token configured here), and
    # the credentials never reach the log either.
    assert "Authorization" not in collector.headers[0]
    assert "chatgpt-account-id" not in collector.headers[0]
    assert ACCESS_TOKEN not in caplog.text and ACCOUNT_ID not in caplog.text
