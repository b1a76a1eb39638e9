"""Replay throughput and peak memory on a large synthetic transcript built from the fixtures.

The transcript repeats every recorded session (all rows: meta, stderr, c2s, s2c) until it
holds at least ``lines`` rows; ``codex-rpc-analytics replay`` then runs on it as a real
subprocess writing to /dev/null, and we read its wall time and peak RSS. Running it at two
sizes shows whether memory stays flat as input grows.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRANSCRIPTS = REPO / "tests" / "fixtures" / "transcripts"


def build_transcript(path: Path, lines: int) -> int:
    rows = [row for source in sorted(TRANSCRIPTS.glob("*.rpc.jsonl"))
            for row in source.read_bytes().splitlines(keepends=True)]
    block = b"".join(rows)
    written = 0
    with path.open("wb") as out:
        while written < lines:
            out.write(block)
            written += len(rows)
    return written


def _run_replay(path: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one replay subprocess."""
    script = (
        "import resource, sys, time\n"
        "from codex_rpc_analytics.cli.main import main\n"
        "start = time.perf_counter()\n"
        "status = main(['replay', sys.argv[1]])\n"
        "elapsed = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(f'{elapsed} {peak}', file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    with open("/dev/null", "wb") as devnull:
        result = subprocess.run([sys.executable, "-c", script, str(path)], stdout=devnull,
                                stderr=subprocess.PIPE, check=True)
    elapsed, peak = result.stderr.decode().split()
    return float(elapsed), int(peak)


def run(lines: int = 1_000_000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.rpc.jsonl"
        large = Path(tmp) / "large.rpc.jsonl"
        small_lines = build_transcript(small, lines // 4)
        large_lines = build_transcript(large, lines)
        size_mb = large.stat().st_size / 1e6
        _, small_peak = _run_replay(small)
        elapsed, large_peak = _run_replay(large)
    figures = {
        "replay_lines": large_lines,
        "replay_mb": round(size_mb, 1),
        "replay_seconds": round(elapsed, 2),
        "replay_lines_per_s": round(large_lines / elapsed),
        "replay_peak_rss_mib_at_quarter": round(small_peak / 1024, 1),
        "replay_peak_rss_mib_at_full": round(large_peak / 1024, 1),
    }
    print(f"replay: {large_lines:,} lines ({size_mb:.0f} MB) in {elapsed:.2f} s = "
          f"{figures['replay_lines_per_s']:,.0f} lines/s on one core (target >= 300,000)")
    print(f"replay: peak RSS {figures['replay_peak_rss_mib_at_quarter']} MiB at "
          f"{small_lines:,} lines, {figures['replay_peak_rss_mib_at_full']} MiB at "
          f"{large_lines:,} lines (flat memory = about equal)")
    return figures


if __name__ == "__main__":
    started = time.perf_counter()
    run()
    print(f"({time.perf_counter() - started:.1f} s)")
