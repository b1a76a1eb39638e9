"""Delivery throughput: batched delivery through the outbox vs one POST per event.

``await measure_delivery_throughput(n)`` runs a loopback aiohttp collector in this process and
measures, in one run and against the same collector:

* ``per_event``: the reference client's way (analytics-events.md §10.2): one POST per event,
  each awaited before the next, over one keep-alive session; no persistence at all.
* ``batched_delivery``: ``Delivery`` with its defaults (100 events / 256 KiB per request)
  draining an outbox that already holds the events: what batching changes.
* ``batched_end_to_end``: from the first ``submit`` on a fresh outbox until ``flush`` reports
  everything delivered, the durable SQLite commit included.
* the same per-event and batched figures against a collector that answers after
  ``latency_ms`` (a nearby server; chatgpt.com is tens of ms away), with fewer per-event POSTs.

Run alone: ``python bench/delivery_bench.py [N]``.
"""

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from codex_rpc_analytics.delivery import Delivery, Outbox, parse_sink_spec
from codex_rpc_analytics.delivery.http_sink import build_body

_TURN_PARAMS = {
    "thread_id": "01a21287-1c84-7ee1-a8f6-7acf558e5cbc",
    "turn_id": "",
    "app_server_client": {
        "product_client_id": "probe", "client_name": "probe", "client_version": "0.0.1",
        "rpc_transport": "stdio", "experimental_api_enabled": True,
    },
    "runtime": {
        "codex_rs_version": "0.169.0", "runtime_os": "linux",
        "runtime_os_version": "12.0.0", "runtime_arch": "x86_64",
    },
    # Padding to the size of a real codex_turn_event (~2.5 KB, 77 keys).
    **{f"key_{i:02d}": None for i in range(70)},
    "status": "completed",
}


def _events(n: int) -> list[tuple[str, bytes]]:
    events = []
    for i in range(n):
        params = {**_TURN_PARAMS, "turn_id": f"turn-{i:08d}"}
        doc = {"event_type": "codex_turn_event", "event_params": params}
        events.append(("codex_turn_event", json.dumps(doc, separators=(",", ":")).encode()))
    return events


def _fake_codex_home(root: Path) -> Path:
    home = root / "codex-home"
    home.mkdir()
    auth = {
        "auth_mode": "chatgpt",
        "tokens": {"access_token": "bench-access-token", "account_id": "bench-account"},
    }
    (home / "auth.json").write_text(json.dumps(auth))
    return home


class _Collector:
    def __init__(self) -> None:
        self.events = 0
        self.latency_s = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        # Count events without a full decode: one per "event_type" key at the top of each event.
        self.events += body.count(b'{"event_type":')
        return web.json_response({})


async def _per_event(url: str, events: list[tuple[str, bytes]]) -> float:
    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for _, payload in events:
            async with session.post(url, data=build_body([payload])) as response:
                await response.read()
        return time.perf_counter() - started


async def _batched(
    state_dir: Path, base: str, codex_home: Path, events: list[tuple[str, bytes]], *, prefill: bool
) -> float:
    spec = parse_sink_spec(base)
    if prefill:
        outbox = Outbox.open(state_dir)
        outbox.commit([(t, p, time.time()) for t, p in events], [spec.key])
        outbox.close()
    delivery = Delivery(state_dir=state_dir, sinks=[spec], codex_home=codex_home)
    started = time.perf_counter()
    delivery.start()
    delivery.submit([] if prefill else events)
    result = await delivery.flush_async(300)
    elapsed = time.perf_counter() - started
    await delivery.close_async(5)
    if not result.complete:
        raise RuntimeError(f"delivery incomplete: {result}")
    return elapsed


async def measure_delivery_throughput(n_events: int, latency_ms: float = 5.0) -> dict[str, Any]:
    events = _events(n_events)
    slow_n = min(n_events, 200)
    collector = _Collector()
    app = web.Application()
    app.router.add_post("/{tail:.*}", collector.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}/backend-api/"
    url = base + "codex/analytics-events/events"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            codex_home = _fake_codex_home(root)
            per_event = n_events / await _per_event(url, events)
            delivery = n_events / await _batched(
                root / "a", base, codex_home, events, prefill=True
            )
            end_to_end = n_events / await _batched(
                root / "b", base, codex_home, events, prefill=False
            )
            collector.latency_s = latency_ms / 1000
            slow_per_event = slow_n / await _per_event(url, events[:slow_n])
            slow_batched = n_events / await _batched(
                root / "c", base, codex_home, events, prefill=True
            )
    finally:
        await runner.cleanup()
    expected = 4 * n_events + slow_n
    if collector.events != expected:
        raise RuntimeError(f"collector saw {collector.events} events, expected {expected}")
    return {
        "n_events": n_events,
        "event_bytes": len(events[0][1]),
        "loopback": {
            "per_event_events_per_s": round(per_event),
            "batched_delivery_events_per_s": round(delivery),
            "batched_end_to_end_events_per_s": round(end_to_end),
            "batching_speedup": round(delivery / per_event, 1),
            "end_to_end_speedup": round(end_to_end / per_event, 1),
        },
        f"collector_latency_{latency_ms:g}ms": {
            "per_event_events_per_s": round(slow_per_event),
            "batched_delivery_events_per_s": round(slow_batched),
            "batching_speedup": round(slow_batched / slow_per_event, 1),
        },
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(json.dumps(asyncio.run(measure_delivery_throughput(count)), indent=2))
