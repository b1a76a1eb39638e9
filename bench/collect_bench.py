"""Collector ingestion into a real PostgreSQL: 1 and 3 collectors next to a raw asyncpg COPY.

A throwaway PostgreSQL (tests/pgserver.py: initdb + pg_ctl in a temp dir, loopback only) gets
a fresh database per run. Each run sends the same events (real codex turn and thread events
from tests/fixtures, each with its own id) as batches of 100, the size our HTTP sink sends,
from ``CONCURRENCY`` connections at once, to ``codex-rpc-analytics collect`` processes (one,
then three on the same database, requests spread round-robin). Reported: events/s from the
first request to the last 200 (everything committed), and the request latency (p50, p99).
The limit next to it: the same rows written by one asyncpg ``copy_records_to_table`` into a
table with the same schema and indexes (no HTTP, no parsing, no conflict check).

The load generator runs in this process and shares the 2 cores with the collectors and the
server, as a real deployment on one small machine would not; the figures are a floor.

Run alone: ``python bench/collect_bench.py [N]``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from codex_rpc_analytics.collector import add_token
from codex_rpc_analytics.store import COLUMN_NAMES, make_row, open_store

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # pgserver.py: standard library only

import pgserver  # noqa: E402

BATCH = 100
CONCURRENCY = int(os.environ.get("COLLECT_BENCH_CONNECTIONS", "16"))
PATH = "/codex/analytics-events/events"


def _events(n: int) -> list[bytes]:
    """n real events (the recorded sessions' turn and thread events), each a distinct turn."""
    fixtures = REPO / "tests" / "fixtures" / "transcripts"
    recorded = [line for f in sorted(fixtures.glob("*.events.jsonl"))
                if not f.name.startswith("matrix_")  # as before the scenario matrix
                for line in f.read_bytes().splitlines()]
    events = []
    for i in range(n):
        doc = json.loads(recorded[i % len(recorded)])
        doc["event_params"]["thread_id"] = f"bench-thread-{i // 10}"
        if "turn_id" in doc["event_params"]:
            doc["event_params"]["turn_id"] = f"bench-turn-{i}"
        events.append(json.dumps(doc, separators=(",", ":")).encode())
    return events


class CollectProcess:
    def __init__(self, dsn: str, tokens: Path) -> None:
        # -P: the installed package, as everything else here (`make bench` runs from the
        # repository root, where `python -m` would import the working tree instead).
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "codex_rpc_analytics", "collect", "--store", dsn,
             "--listen", "127.0.0.1:0", "--tokens", str(tokens)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if line.startswith("listening on "):
                self.url = line.split()[2].rstrip("/") + PATH
                return
        raise RuntimeError("collect did not start")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the collector process has used."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=30)


async def _send(urls: list[str], token: str, events: list[bytes]) -> tuple[float, list[float]]:
    requests = []
    for start in range(0, len(events), BATCH):
        chunk = events[start:start + BATCH]
        ids = ",".join(f"bench-{start + i}" for i in range(len(chunk)))
        requests.append((b'{"events":[' + b",".join(chunk) + b"]}", {
            "Authorization": f"Bearer {token}", "Content-Type": "application/json",
            "X-Codex-Rpc-Analytics-Event-Ids": ids}))
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            data, headers = requests[i]
            sent = time.perf_counter()
            async with session.post(urls[i % len(urls)], data=data, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"collector answered {r.status}")
            latencies.append(time.perf_counter() - sent)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return elapsed, sorted(latencies)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM events"))
    finally:
        await conn.close()


async def _copy(server: pgserver.PgServer, dsn: str, events: list[bytes]) -> tuple[float, float]:
    """Seconds the COPY took and PostgreSQL's CPU seconds for it."""
    store = await open_store(dsn, migrate=True)  # the same schema, indexes and compression
    await store.close()
    now = int(time.time() * 1000)
    rows = [make_row("bench", f"bench-{i}", e, now) for i, e in enumerate(events)]
    conn = await asyncpg.connect(dsn)
    try:
        server_before = _server_cpu_s(server)
        started = time.perf_counter()
        await conn.copy_records_to_table("events", records=rows, columns=list(COLUMN_NAMES))
        elapsed = time.perf_counter() - started
        return elapsed, _server_cpu_s(server) - server_before  # before the backend exits
    finally:
        await conn.close()


async def _drop(server: pgserver.PgServer, name: str) -> None:
    """Drop a run's database once it is counted: otherwise autovacuum works through its 50,000
    new rows during a later run (a few µs an event), and that run's PostgreSQL CPU counts it."""
    conn = await asyncpg.connect(server.dsn)
    try:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu_s(server: pgserver.PgServer) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster and every process it started."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    total = _cpu_s(postmaster)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _collect_run(server: pgserver.PgServer, name: str, n_collectors: int, tokens: Path,
                 token: str, events: list[bytes]) -> dict[str, float]:
    dsn = server.create_database(name)
    collectors = [CollectProcess(dsn, tokens) for _ in range(n_collectors)]
    try:
        before = (sum(c.cpu_s() for c in collectors), _server_cpu_s(server), _own_cpu_s())
        elapsed, latencies = asyncio.run(_send([c.url for c in collectors], token, events))
        cpu = sum(c.cpu_s() for c in collectors) - before[0]
        server_cpu = _server_cpu_s(server) - before[1]  # before the collectors disconnect
        sender_cpu = _own_cpu_s() - before[2]
    finally:
        for collector in collectors:
            collector.stop()
    stored = asyncio.run(_count(dsn))
    asyncio.run(_drop(server, name))
    assert stored == len(events), (stored, len(events))
    n = len(events)
    return {"events_per_s": n / elapsed, "p50_ms": _pct(latencies, 0.50),
            "p99_ms": _pct(latencies, 0.99), "cpu_us": cpu / n * 1e6,
            "server_cpu_us": server_cpu / n * 1e6, "sender_cpu_us": sender_cpu / n * 1e6}


def _span(values: list[float], fmt: str = ",.0f") -> str:
    low, high = min(values), max(values)
    return f"{low:{fmt}}" if f"{low:{fmt}}" == f"{high:{fmt}}" else f"{low:{fmt}}-{high:{fmt}}"


# Tiny sizes for `bench/run.py --smoke`: the bench runs, its figures mean nothing.
SMOKE = {"n_events": 200, "rounds": 1}


def run(n_events: int = 50_000, rounds: int = 3) -> dict[str, Any]:
    """``rounds`` alternating trials of each configuration (the machine is shared: ranges)."""
    reason = pgserver.unavailable_reason()
    if reason is not None:
        print(f"   skipped: {reason}")
        return {}
    events = _events(n_events)
    server = pgserver.start_server()
    root = Path(tempfile.mkdtemp(prefix="cra-collect-bench-"))
    tokens = root / "tokens"
    token = add_token(tokens, "bench")
    results: dict[str, list[Any]] = {"copy": [], "copy_server_cpu_us": [], "1": [], "3": []}
    load = os.getloadavg()[0]
    try:
        for r in range(rounds):
            for n in (1, 3):
                results[str(n)].append(
                    _collect_run(server, f"collect_{n}_{r}", n, tokens, token, events))
            copy_s, copy_server_s = asyncio.run(
                _copy(server, server.create_database(f"copy_{r}"), events))
            asyncio.run(_drop(server, f"copy_{r}"))
            results["copy"].append(n_events / copy_s)
            results["copy_server_cpu_us"].append(copy_server_s / n_events * 1e6)
    finally:
        server.cleanup()
        for path in root.iterdir():
            path.unlink()
        root.rmdir()
    copy = results["copy"]
    print(f"   {n_events:,} events ({sum(map(len, events)) / n_events:,.0f} B each) in batches of"
          f" {BATCH} over {CONCURRENCY} connections, {rounds} rounds; load average"
          f" {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"   raw asyncpg COPY of the same rows (the limit): {_span(copy)} events/s;"
          f" CPU an event: PostgreSQL {_span(results['copy_server_cpu_us'], '.0f')} µs")
    for n in ("1", "3"):
        runs = results[n]
        rates = [x["events_per_s"] for x in runs]
        ratios = [x["events_per_s"] / c for x, c in zip(runs, copy, strict=True)]
        print(f"   {n} collector{'s' if n == '3' else ' '}: {_span(rates)} events/s"
              f" ({_span([100 * x for x in ratios])} % of COPY in the same round),"
              f" request p50 {_span([x['p50_ms'] for x in runs], '.0f')} ms,"
              f" p99 {_span([x['p99_ms'] for x in runs], '.0f')} ms;"
              f" CPU an event: collector {_span([x['cpu_us'] for x in runs], '.0f')} µs,"
              f" PostgreSQL {_span([x['server_cpu_us'] for x in runs], '.0f')} µs,"
              f" load generator {_span([x['sender_cpu_us'] for x in runs], '.0f')} µs")
        # What the same work needs of 2 cores of its own: a bound that does not depend on
        # what else the shared machine runs (it assumes the 2 cores are kept busy).
        totals = [x["cpu_us"] + x["server_cpu_us"] + x["sender_cpu_us"] for x in runs]
        print(f"      CPU-bound rate on 2 idle cores: {_span([2e6 / t for t in totals])}"
              " events/s")
    floor = 25_000
    best = max(x["events_per_s"] for x in results["1"])
    print(f"   floor for one collector, {floor:,} events/s: "
          f"{'met' if best >= floor else 'MISSED'} (best round {best:,.0f})")
    return results


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
