"""Replay throughput and peak memory on large synthetic transcripts, two mixes.

* The fixture mix repeats the five first recorded sessions of tests/fixtures/transcripts
  (``FIXTURE_MIX``; all rows: meta, stderr, c2s, s2c) until it holds at least ``lines`` rows:
  few deltas, many thread results and errors, the hard case per line.
* The delta-heavy mix is one long real-shaped session (shapes.py: threads of steered turns,
  87% of the lines ``item/*`` deltas, as in real codex sessions) of at least ``lines`` rows.

``codex-rpc-analytics replay`` runs on each as a real subprocess (one thread) writing to
/dev/null, and we read its wall time and peak RSS. The fixture mix also runs at a quarter of
the size: equal peaks mean memory stays flat as input grows.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TRANSCRIPTS = REPO / "tests" / "fixtures" / "transcripts"
sys.path.insert(0, str(BENCH))

from shapes import Shapes, transcript_rows  # noqa: E402

# The mix the figures have been measured on since the first bench: the five sessions recorded
# first. Recordings added later (the scenario matrix) stay out of it, so figures stay
# comparable; tests replay every recording.
FIXTURE_MIX = ("fakeauth_full_flow", "gating_g1_no_analytics_section",
               "noauth_framing_edge_cases", "noauth_initialize", "noauth_threads")


def fixture_paths() -> list[Path]:
    return [TRANSCRIPTS / f"{name}.rpc.jsonl" for name in FIXTURE_MIX]


def build_transcript(path: Path, lines: int) -> int:
    rows = [row for source in fixture_paths()
            for row in source.read_bytes().splitlines(keepends=True)]
    block = b"".join(rows)
    written = 0
    with path.open("wb") as out:
        while written < lines:
            out.write(block)
            written += len(rows)
    return written


def build_delta_transcript(path: Path, lines: int, turns_per_thread: int = 5) -> int:
    shapes = Shapes()
    per_thread = 4 + turns_per_thread * (4 + len(shapes.turn_first) + len(shapes.turn_second))
    threads = -(-lines // per_thread)
    written = 0
    with path.open("wb") as out:
        for row in transcript_rows(threads, turns_per_thread):
            out.write(row)
            written += 1
    return written


def _run_replay(path: Path) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (KiB) and CPU seconds of one replay subprocess."""
    script = (
        "import sys, time\n"
        "from codex_rpc_analytics.cli.main import main\n"
        "start = time.perf_counter()\n"
        "cpu = time.process_time()\n"
        "status = main(['replay', sys.argv[1]])\n"
        "elapsed = time.perf_counter() - start\n"
        "cpu = time.process_time() - cpu\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forked parent (this
        # bench, holding the transcripts) through exec; VmHWM belongs to the new image.
        "peak = next(int(line.split()[1]) for line in open('/proc/self/status')\n"
        "            if line.startswith('VmHWM:'))\n"
        "print(f'{elapsed} {peak} {cpu}', file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    with open("/dev/null", "wb") as devnull:
        result = subprocess.run([sys.executable, "-c", script, str(path)], stdout=devnull,
                                stderr=subprocess.PIPE, check=True)
    elapsed, peak, cpu = result.stderr.decode().split()[-3:]
    return float(elapsed), int(peak), float(cpu)


# Tiny sizes for `bench/run.py --smoke`: the bench runs, its figures mean nothing.
SMOKE = {"lines": 2_000}


def run(lines: int = 1_000_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.rpc.jsonl"
        large = Path(tmp) / "large.rpc.jsonl"
        deltas = Path(tmp) / "deltas.rpc.jsonl"
        small_lines = build_transcript(small, lines // 4)
        large_lines = build_transcript(large, lines)
        delta_lines = build_delta_transcript(deltas, lines)
        size_mb = large.stat().st_size / 1e6
        delta_mb = deltas.stat().st_size / 1e6
        _, small_peak, _ = _run_replay(small)
        elapsed, large_peak, cpu = _run_replay(large)
        delta_elapsed, delta_peak, delta_cpu = _run_replay(deltas)
    figures = {
        "replay_lines": large_lines,
        "replay_mb": round(size_mb, 1),
        "replay_seconds": round(elapsed, 2),
        "replay_lines_per_s": round(large_lines / elapsed),
        "replay_peak_rss_mib_at_quarter": round(small_peak / 1024, 1),
        "replay_peak_rss_mib_at_full": round(large_peak / 1024, 1),
        "replay_lines_per_cpu_s": round(large_lines / cpu),
        "replay_delta_lines_per_cpu_s": round(delta_lines / delta_cpu),
        "replay_delta_lines": delta_lines,
        "replay_delta_lines_per_s": round(delta_lines / delta_elapsed),
        "replay_delta_peak_rss_mib": round(delta_peak / 1024, 1),
    }
    print(f"replay: fixture mix {large_lines:,} lines ({size_mb:.0f} MB) in {elapsed:.2f} s = "
          f"{figures['replay_lines_per_s']:,.0f} lines/s on one thread (target >= 300,000); "
          f"{figures['replay_lines_per_cpu_s']:,} lines per CPU second")
    print(f"replay: delta-heavy mix {delta_lines:,} lines ({delta_mb:.0f} MB) in "
          f"{delta_elapsed:.2f} s = {figures['replay_delta_lines_per_s']:,.0f} lines/s on one "
          f"thread (target >= 600,000); {figures['replay_delta_lines_per_cpu_s']:,} lines per CPU "
          f"second; peak RSS {figures['replay_delta_peak_rss_mib']} MiB")
    print(f"replay: peak RSS {figures['replay_peak_rss_mib_at_quarter']} MiB at "
          f"{small_lines:,} lines, {figures['replay_peak_rss_mib_at_full']} MiB at "
          f"{large_lines:,} lines (flat memory = about equal)")
    return figures


if __name__ == "__main__":
    started = time.perf_counter()
    run()
    print(f"({time.perf_counter() - started:.1f} s)")
