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
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

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


class _CollectorProcess:
    """bench/collector.py in a subprocess: its own interpreter, its own core."""

    def __init__(self) -> None:
        script = Path(__file__).with_name("collector.py")
        self.process = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"

    async def events(self, session: aiohttp.ClientSession) -> int:
        async with session.get(f"{self.base}/_bench/count") as response:
            return int((await response.json())["events"])

    async def set_latency(self, session: aiohttp.ClientSession, ms: float) -> None:
        async with session.post(f"{self.base}/_bench/latency", params={"ms": str(ms)}):
            pass

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


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
    collector = _CollectorProcess()
    base = f"{collector.base}/backend-api/"
    url = base + "codex/analytics-events/events"
    try:
        async with aiohttp.ClientSession() as control:
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
                await collector.set_latency(control, latency_ms)
                slow_per_event = slow_n / await _per_event(url, events[:slow_n])
                slow_batched = n_events / await _batched(
                    root / "c", base, codex_home, events, prefill=True
                )
            received = await collector.events(control)
    finally:
        collector.stop()
    expected = 4 * n_events + slow_n
    if received != expected:
        raise RuntimeError(f"collector saw {received} events, expected {expected}")
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


# Tiny sizes for `bench/run.py --smoke`: the bench runs, its figures mean nothing.
SMOKE = {"n_events": 40}


def run(n_events: int = 5000) -> dict[str, Any]:
    """The `make bench` section: prints the figures issue 4 asks for."""
    figures = asyncio.run(measure_delivery_throughput(n_events))
    loop = figures["loopback"]
    slow = figures["collector_latency_5ms"]
    print(f"delivery: {n_events:,} events of {figures['event_bytes']} B to a loopback collector "
          f"process")
    print(f"delivery: one POST per event (the reference's way): "
          f"{loop['per_event_events_per_s']:,} events/s")
    print(f"delivery: batched from the outbox: {loop['batched_delivery_events_per_s']:,} "
          f"events/s = {loop['batching_speedup']}x (target >= 20x)")
    print(f"delivery: batched, submit to delivered incl. durable commit: "
          f"{loop['batched_end_to_end_events_per_s']:,} events/s = {loop['end_to_end_speedup']}x")
    print(f"delivery: collector answering after 5 ms: per event "
          f"{slow['per_event_events_per_s']:,} events/s, batched "
          f"{slow['batched_delivery_events_per_s']:,} events/s = {slow['batching_speedup']}x")
    return figures


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(json.dumps(asyncio.run(measure_delivery_throughput(count)), indent=2))
