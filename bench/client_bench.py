"""The in-process client: what a ``track_*`` call costs its caller, and events/s end to end.

* Call cost: ``calls`` calls of each kind in a tight loop on the caller's thread, while the
  client's worker reduces them concurrently (so the figure includes sharing the GIL with it).
  ``wall`` is elapsed time per call, ``cpu`` the caller thread's own CPU time per call.
* Throughput: ``n_events`` distinct ``track_app_used`` calls through a client whose
  ``Delivery`` (SQLite outbox + HTTP sink, defaults) POSTs to an aiohttp collector on
  127.0.0.1, timed from the first call until ``flush`` reports everything delivered.

Run alone: ``python bench/client_bench.py [CALLS] [N_EVENTS]``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from codex_rpc_analytics.client import (
    AnalyticsEventsClient,
    AppInvocation,
    PluginCapabilitySummary,
    PluginTelemetryMetadata,
    SkillInvocation,
    TrackEventsContext,
)
from codex_rpc_analytics.delivery import Delivery, FlushResult, parse_sink_spec

_INIT_PARAMS = (b'{"clientInfo":{"name":"bench","title":"Bench","version":"0.0.1"},'
                b'"capabilities":{"experimentalApi":true}}')
_INIT_RESULT = (b'{"userAgent":"bench/0.169.0 (Debian 12.0.0; x86_64) xterm (bench; 0.0.1)",'
                b'"platformOs":"linux"}')
_THREAD_RESULT = (b'{"thread":{"id":"thr-1","sessionId":"thr-1","ephemeral":false,'
                  b'"createdAt":1795607174,"source":"vscode","threadSource":null,"turns":[]},'
                  b'"model":"gpt-5","modelProvider":"openai"}')


class _NullDelivery:
    """Takes the events and drops them: the call-cost runs measure the client alone."""

    def __init__(self) -> None:
        self.events = 0

    def submit(self, events: Sequence[tuple[str, bytes]]) -> None:
        self.events += len(events)

    def flush(self, timeout: float) -> FlushResult:
        return FlushResult(complete=True, uncommitted=0, sinks={})

    async def flush_async(self, timeout: float) -> FlushResult:
        return self.flush(timeout)

    def close(self, timeout: float) -> FlushResult:
        return self.flush(timeout)


def _kinds(n: int) -> dict[str, Callable[[AnalyticsEventsClient, int], None]]:
    turns = [TrackEventsContext("thr-1", f"turn-{i}", "gpt-5") for i in range(n)]
    app = AppInvocation("calendar", "Calendar", "explicit")
    plugin = PluginTelemetryMetadata(
        "sample@test", capability_summary=PluginCapabilitySummary(True, ["mcp-1"], ["drive"]))
    skills = [SkillInvocation("doc", "/nonexistent/.codex/skills/doc/SKILL.md")]
    return {
        "track_app_used": lambda c, i: c.track_app_used(turns[i], app),
        "track_plugin_used": lambda c, i: c.track_plugin_used(turns[i], plugin),
        "track_skill_invocations": lambda c, i: c.track_skill_invocations(turns[i], skills),
        "track_app_mentioned": lambda c, i: c.track_app_mentioned(turns[i], [app]),
        "track_plugin_installed": lambda c, i: c.track_plugin_installed(plugin),
        "track_initialize (raw JSON)": lambda c, i: c.track_initialize(
            i, _INIT_PARAMS, _INIT_RESULT),
        "track_response (raw JSON)": lambda c, i: c.track_response(
            0, "thread/start", _THREAD_RESULT),
    }


def measure_call_cost(calls: int) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """kind -> (wall ns per call, caller CPU ns per call); kind -> facts/s the worker reduced
    (reduce + encode + hand-off, timed from the first call until close returned)."""
    results: dict[str, tuple[float, float]] = {}
    rates: dict[str, float] = {}
    for name, call in _kinds(calls).items():
        client = AnalyticsEventsClient(_NullDelivery(), max_queued_facts=calls + 1,
                                       close_at_exit=False)
        client.track_initialize(0, _INIT_PARAMS, _INIT_RESULT)
        wall0, cpu0 = time.perf_counter_ns(), time.thread_time_ns()
        for i in range(calls):
            call(client, i)
        wall, cpu = time.perf_counter_ns() - wall0, time.thread_time_ns() - cpu0
        result = client.close(120)
        status = client.status()
        if not result.complete or status.dropped or status.failed:
            raise RuntimeError(f"{name}: {result} {status}")
        results[name] = (wall / calls, cpu / calls)
        rates[name] = calls / ((time.perf_counter_ns() - wall0) / 1e9)
    disabled = AnalyticsEventsClient.disabled()
    app = AppInvocation("calendar")
    turn = TrackEventsContext("thr-1", "turn-1", "gpt-5")
    wall0 = time.perf_counter_ns()
    for _ in range(calls):
        disabled.track_app_used(turn, app)
    results["disabled client (any call)"] = ((time.perf_counter_ns() - wall0) / calls, 0.0)
    return results, rates


def _fake_codex_home(root: Path) -> Path:
    home = root / "codex-home"
    home.mkdir()
    auth = {"auth_mode": "chatgpt",
            "tokens": {"access_token": "bench-access-token", "account_id": "bench-account"}}
    (home / "auth.json").write_text(json.dumps(auth))
    return home


class _Collector:
    """A loopback analytics backend on its own thread and event loop."""

    def __init__(self) -> None:
        self.events = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.events += body.count(b'{"event_type":')
        return web.json_response({})

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = self._runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def __enter__(self) -> _Collector:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def measure_throughput(n_events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, _Collector() as collector:
        root = Path(tmp)
        delivery = Delivery(
            state_dir=root / "state",
            sinks=[parse_sink_spec(f"http://127.0.0.1:{collector.port}/backend-api/")],
            codex_home=_fake_codex_home(root),
        )
        delivery.start()
        client = AnalyticsEventsClient(delivery, owns_delivery=True, close_at_exit=False,
                                       max_queued_facts=n_events + 1)
        app = AppInvocation("calendar", "Calendar", "explicit")
        turns = [TrackEventsContext("thr-1", f"turn-{i}", "gpt-5") for i in range(n_events)]
        started = time.perf_counter()
        for turn in turns:
            client.track_app_used(turn, app)
        calls_s = time.perf_counter() - started
        result = client.flush(300)
        elapsed = time.perf_counter() - started
        client.close(10)
        if not result.complete or collector.events != n_events:
            raise RuntimeError(f"incomplete: {result}, collector saw {collector.events}")
    return {"events": n_events, "calls_s": calls_s, "elapsed_s": elapsed,
            "events_per_s": n_events / elapsed}


# Tiny sizes for `bench/run.py --smoke`: the bench runs, its figures mean nothing.
SMOKE = {"calls": 1_000, "n_events": 200}


def run(calls: int = 100_000, n_events: int = 20_000) -> None:
    print(f"   track_* cost on the caller's thread ({calls:,} calls each, worker running):")
    costs, rates = measure_call_cost(calls)
    for name, (wall, cpu) in costs.items():
        cpu_text = f", {cpu:6.0f} ns cpu" if cpu else ""
        rate = f";  worker reduces {rates[name]:>9,.0f} facts/s" if name in rates else ""
        print(f"     {name:<30} {wall:6.0f} ns wall{cpu_text}{rate}")
    result = measure_throughput(n_events)
    print(f"   in-process client -> Delivery (outbox + HTTP sink) -> loopback collector: "
          f"{result['events_per_s']:,.0f} events/s ({result['events']:,} events in "
          f"{result['elapsed_s']:.2f} s; the calls themselves took {result['calls_s']:.3f} s)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    run(*args)
