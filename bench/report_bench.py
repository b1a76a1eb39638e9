"""The report: time to build it over 100,000 and 1,000,000 events, on SQLite and PostgreSQL,
and the peak RSS of the `report` process at both sizes (equal peaks: memory does not grow
with the store).

The stores hold a generated month of a team's traffic (tests/traffic.py: the shape of real
codex events), filled through the store's own ingest path. Each build is
`codex-rpc-analytics report --store … -o FILE` as a subprocess, timed wall-clock, its peak
RSS read from wait4; the Vega bundle is cached before the first timed run (a user's first
report makes it once, ~1.5 s). PostgreSQL is a throwaway server (tests/pgserver.py), vacuumed
and analysed after the bulk load as autovacuum would have done on a live store.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codex_rpc_analytics.report.assets import vega_bundle
from codex_rpc_analytics.store import make_row, open_store

# tests/ on the path (not the repository: the package is the installed one), for the
# throwaway PostgreSQL and the traffic generator, both importable on their own.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pgserver import start_server, unavailable_reason
from traffic import month_of_traffic

SIZES = (100_000, 1_000_000)
END_MS = 1_796_200_000_000
WINDOW = ["--since", str((END_MS - 31 * 86_400_000) // 1000), "--until", str(END_MS // 1000)]
BATCH = 5_000
RUNS = 3


# The report command in a fresh interpreter, which reports its own CPU time and peak RSS
# (VmHWM: ru_maxrss would carry over this bench's own peak through fork and exec).
_REPORT = (
    "import sys, time\n"
    "from codex_rpc_analytics.cli.main import main\n"
    "status = main(sys.argv[1:])\n"
    "cpu = time.process_time()\n"
    "peak = next(int(line.split()[1]) for line in open('/proc/self/status')\n"
    "            if line.startswith('VmHWM:'))\n"
    "print(f'\\nreport-bench {cpu} {peak}', file=sys.stderr)\n"
    "sys.exit(status)\n"
)


def build(spec: str, out: Path) -> tuple[float, float, int]:
    """One `report` run: (wall seconds, CPU seconds of the report process, peak RSS in MiB).
    On a loaded machine the CPU time says more than the wall time: for SQLite it is all the
    work; for PostgreSQL the queries' work is the server's, not counted here."""
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-P", "-c", _REPORT, "report", "--store", spec, *WINDOW,
         "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    stderr = child.stderr.decode()
    if child.returncode != 0:
        raise RuntimeError(f"report failed: {stderr}")
    cpu, peak_kib = stderr.rsplit("report-bench ", 1)[1].split()[:2]
    return elapsed, float(cpu), int(peak_kib) // 1024


async def fill(specs: list[str], upto: int, generator, done: int) -> tuple[int, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Ingest the next events into every store, until each holds ``upto``."""
    stores = [await open_store(spec, migrate=True) for spec in specs]
    spent = dict.fromkeys(specs, 0.0)
    try:
        while done < upto:
            batch = []
            for generated in generator:
                batch.append(make_row(generated.source, generated.event_id, generated.payload,
                                      generated.received_at_ms))
                if len(batch) == min(BATCH, upto - done):
                    break
            for spec, store in zip(specs, stores, strict=True):
                started = time.perf_counter()
                await store.ingest(batch)
                spent[spec] += time.perf_counter() - started
            done += len(batch)
        for spec, store in zip(specs, stores, strict=True):
            if spec.startswith("postgresql://"):
                await store.fetch("VACUUM ANALYZE events")
    finally:
        for store in stores:
            await store.close()
    return done, spent


# Tiny sizes for `bench/run.py --smoke`: the bench runs, its figures mean nothing.
SMOKE = {"sizes": (500,), "runs": 1}


def run(sizes: tuple[int, ...] = SIZES, runs: int | None = None) -> None:
    runs = RUNS if runs is None else runs
    reason = unavailable_reason()
    server = start_server() if reason is None else None
    print(f"   load: {os.getloadavg()[0]:.1f} (1-minute average, 2 cores)")
    if server is None:
        print(f"   PostgreSQL skipped: {reason}")
    with tempfile.TemporaryDirectory(prefix="cra-report-bench-") as tmp:
        stores = {"SQLite": str(Path(tmp) / "team.sqlite3")}
        if server is not None:
            stores["PostgreSQL"] = server.dsn
        out = Path(tmp) / "report.html"
        vega_bundle()  # made once and cached, as a user's first report does
        generator = iter(month_of_traffic(sizes[-1], END_MS, seed=2026))
        done = 0
        previous = 0
        try:
            for size in sizes:
                done, spent = asyncio.run(fill(list(stores.values()), size, generator, done))
                for name, spec in stores.items():
                    rate = (size - previous) / spent[spec]
                    timings, cpus, peaks = [], [], []
                    for _ in range(runs):
                        seconds, cpu, peak = build(spec, out)
                        timings.append(seconds)
                        cpus.append(cpu)
                        peaks.append(peak)
                    print(f"   {name:10s} {size:>9,} events: report built in "
                          f"{min(timings):.2f}-{max(timings):.2f} s "
                          f"(median {statistics.median(timings):.2f}, {runs} runs; report "
                          f"process CPU {min(cpus):.2f}-{max(cpus):.2f} s), "
                          f"peak RSS {max(peaks)} MiB, {out.stat().st_size // 1024} KiB page; "
                          f"ingest {rate:,.0f} events/s, load {os.getloadavg()[0]:.1f}",
                          flush=True)
                previous = size
        finally:
            if server is not None:
                server.cleanup()
    print(f"   load after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    run()
