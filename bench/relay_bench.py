"""The stdio relay: ``codex-rpc-analytics proxy -- cat`` against ``cat`` alone, in one run.

Messages are the real protocol lines of the recorded fixture sessions (both directions),
repeated. Through the proxy every line is relayed twice (to cat and back) and analysed twice.

* Throughput: a writer thread pushes ``messages`` lines into stdin while the bench reads
  stdout until every byte came back; messages/s and MB/s of the whole trip. The proxy
  analyses only while its relay is idle, so under this load analysis falls behind (its
  backlog is bounded); an ``rpcAnalytics/status`` request sent after the last byte is
  answered once everything relayed before it has been analysed, which times analysis too.
* Round-trip latency: one line written, read back whole, then the next (ping-pong), after a
  warm-up; p50 and p99 per message. Added latency is the proxy's figure minus cat's.

Both sides are driven with raw ``os.read``/``os.write`` on the pipes, so the client's own
cost is the same for both and cancels out of the difference. On a small VM, ``cat`` alone
has two modes: both processes on one CPU (a round trip of a few µs) or on two (tens of µs,
each wake-up resumes a halted vCPU); the share of the fast mode is printed, since it moves
cat's p50 and with it the added figure.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TRANSCRIPTS = REPO / "tests" / "fixtures" / "transcripts"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from replay_bench import fixture_paths  # noqa: E402

PROXY = [sys.executable, "-m", "codex_rpc_analytics", "proxy"]


def real_lines() -> list[bytes]:
    lines = []
    for path in fixture_paths():  # the replay bench's fixture mix
        for text in path.read_text().splitlines():
            row = json.loads(text)
            if row["dir"] in ("c2s", "s2c") and isinstance(row.get("raw"), str):
                lines.append(row["raw"].encode() + b"\n")
    return lines


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)


def _stop(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.close()
    process.stdout.read()
    process.wait(30)


STATUS = b'{"id":"bench","method":"rpcAnalytics/status"}\n'


def throughput(command: list[str], stream: bytes, messages: int,
               analysed: list[float] | None = None,
               relay: dict[str, Any] | None = None) -> tuple[float, float]:
    """(messages/s, MB/s) for pushing ``stream`` through and reading it all back. With
    ``analysed`` (a proxy only), the seconds until analysis caught up are appended to it and
    ``relay`` gets the relay counters of ``rpcAnalytics/status``."""
    process = _start(command)
    assert process.stdin is not None and process.stdout is not None
    in_fd, out_fd = process.stdin.fileno(), process.stdout.fileno()
    # Warm up: one round trip so start-up is not measured.
    os.write(in_fd, stream[: stream.index(b"\n") + 1])
    _read_exactly(out_fd, stream.index(b"\n") + 1)

    def writer() -> None:
        view = memoryview(stream)
        while view:
            view = view[os.write(in_fd, view[: 1 << 16]) :]

    started = time.perf_counter()
    thread = threading.Thread(target=writer)
    thread.start()
    _read_exactly(out_fd, len(stream))
    elapsed = time.perf_counter() - started
    thread.join()
    if analysed is not None:
        os.write(in_fd, STATUS)
        answer = b""
        while not answer.endswith(b"\n"):
            answer += os.read(out_fd, 1 << 20)
        analysed.append(time.perf_counter() - started)
        if relay is not None:
            relay.update(json.loads(answer)["result"]["relay"])
    _stop(process)
    return messages / elapsed, len(stream) / elapsed / 1e6


def _read_exactly(fd: int, size: int) -> None:
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise RuntimeError("stream ended early")
        remaining -= len(chunk)


def latencies(command: list[str], lines: list[bytes], rounds: int, warmup: int) -> list[float]:
    """Round-trip seconds of ``rounds`` single messages, each read back before the next."""
    process = _start(command)
    assert process.stdin is not None and process.stdout is not None
    in_fd, out_fd = process.stdin.fileno(), process.stdout.fileno()
    write, read, clock = os.write, os.read, time.perf_counter
    samples = []
    for index in range(warmup + rounds):
        line = lines[index % len(lines)]
        size = len(line)
        started = clock()
        write(in_fd, line)
        got = len(read(out_fd, 1 << 20))
        while got < size:
            got += len(read(out_fd, 1 << 20))
        if index >= warmup:
            samples.append(clock() - started)
    _stop(process)
    return samples


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


# Tiny sizes for `bench/run.py --smoke`: the bench runs, its figures mean nothing.
SMOKE = {"messages": 2_000, "rounds": 40, "warmup": 4, "trials": 1}


def run(messages: int = 200_000, rounds: int = 10_000, warmup: int = 1_000,
        trials: int = 3) -> dict[str, float]:
    lines = real_lines()
    # Latency on ordinary messages (the multi-KB results would measure pipe copies).
    small = [line for line in lines if len(line) <= 2048]
    stream = b"".join(lines[i % len(lines)] for i in range(messages))
    with tempfile.TemporaryDirectory() as tmp:
        proxy = [*PROXY, "--state-dir", str(Path(tmp) / "state"), "--", "cat"]
        # With a backlog bound so far above the whole stream that bulk is never taken out (past
        # a 16th of it) nor anything dropped: the time to analyse everything is the analysis
        # throughput.
        roomy = [*PROXY, "--state-dir", str(Path(tmp) / "state2"), "--max-backlog-mib", "4096",
                 "--", "cat"]
        cat_rate, cat_mbs = throughput(["cat"], stream, messages)
        analysed: list[float] = []
        counters: dict[str, Any] = {}
        proxy_rate, proxy_mbs = throughput(proxy, stream, messages, [], counters)
        roomy_counters: dict[str, Any] = {}
        roomy_rate, _ = throughput(roomy, stream, messages, analysed, roomy_counters)
        assert sum(roomy_counters[d]["analytics_dropped_bytes"] + roomy_counters[d].get(
            "bulk_skipped_lines", 0) for d in ("c2s", "s2c")) == 0
        # Alternate the two, several times: a 2-core machine's scheduling shifts between runs,
        # and both should see the same conditions. Samples of all trials are pooled.
        cat_lat: list[float] = []
        proxy_lat: list[float] = []
        for _ in range(trials):
            cat_lat += latencies(["cat"], small, rounds, warmup)
            proxy_lat += latencies(proxy, small, rounds, warmup)
    us = 1e6
    figures = {
        "relay_messages": messages,
        "relay_mean_message_bytes": round(len(stream) / messages),
        "relay_cat_msgs_per_s": round(cat_rate),
        "relay_cat_mb_per_s": round(cat_mbs, 1),
        "relay_proxy_msgs_per_s": round(proxy_rate),
        "relay_proxy_mb_per_s": round(proxy_mbs, 1),
        "relay_proxy_analysed_msgs_per_s": round(messages / analysed[0]),
        "relay_proxy_roomy_msgs_per_s": round(roomy_rate),
        "relay_proxy_skipped_lines": sum(counters[d].get("bulk_skipped_lines", 0)
                                         for d in ("c2s", "s2c")),
        "relay_proxy_dropped_bytes": sum(counters[d]["analytics_dropped_bytes"]
                                         for d in ("c2s", "s2c")),
        "relay_cat_fast_mode_share": round(sum(x < 10e-6 for x in cat_lat) / len(cat_lat), 2),
        "relay_cat_rtt_p50_us": round(_pct(cat_lat, 0.5) * us, 1),
        "relay_cat_rtt_p99_us": round(_pct(cat_lat, 0.99) * us, 1),
        "relay_proxy_rtt_p50_us": round(_pct(proxy_lat, 0.5) * us, 1),
        "relay_proxy_rtt_p99_us": round(_pct(proxy_lat, 0.99) * us, 1),
    }
    added_p50 = figures["relay_proxy_rtt_p50_us"] - figures["relay_cat_rtt_p50_us"]
    added_p99 = figures["relay_proxy_rtt_p99_us"] - figures["relay_cat_rtt_p99_us"]
    figures["relay_added_rtt_p50_us"] = round(added_p50, 1)
    figures["relay_added_rtt_p99_us"] = round(added_p99, 1)
    print(f"relay: {messages:,} real messages (mean {figures['relay_mean_message_bytes']} B), "
          f"through `proxy -- cat` {proxy_rate:,.0f} msgs/s, {proxy_mbs:.1f} MB/s; "
          f"`cat` alone {cat_rate:,.0f} msgs/s, {cat_mbs:.1f} MB/s "
          f"(ratio {proxy_rate / cat_rate:.2f}; target >= 400,000 msgs/s); with the default "
          f"backlog bound analytics took out {figures['relay_proxy_skipped_lines']:,} bulk lines "
          f"and dropped {figures['relay_proxy_dropped_bytes'] / 1e6:.1f} MB unanalysed")
    print(f"relay: with a 4096 MiB bound (nothing skimmed or dropped) {roomy_rate:,.0f} msgs/s "
          f"relayed, analysis caught up after {analysed[0]:.2f} s: "
          f"{figures['relay_proxy_analysed_msgs_per_s']:,} msgs/s relayed and analysed "
          "both ways")
    print(f"relay: round trip of one message ({trials} x {rounds:,} samples each, "
          f"<= 2 KiB lines): "
          f"cat p50 {figures['relay_cat_rtt_p50_us']} us p99 {figures['relay_cat_rtt_p99_us']}"
          f" us; proxy p50 {figures['relay_proxy_rtt_p50_us']} us p99 "
          f"{figures['relay_proxy_rtt_p99_us']} us; added p50 {added_p50:.1f} us (target <= 30),"
          f" p99 {added_p99:.1f} us (target <= 100); "
          f"ratio p50 {_ratio(proxy_lat, cat_lat, 0.5)}, p99 {_ratio(proxy_lat, cat_lat, 0.99)}")
    print(f"relay: mean round trip cat {statistics.fmean(cat_lat) * us:.1f} us, "
          f"proxy {statistics.fmean(proxy_lat) * us:.1f} us; cat alone in its one-CPU mode "
          f"(< 10 us) for {figures['relay_cat_fast_mode_share']:.0%} of round trips")
    return figures


def _ratio(a: list[float], b: list[float], q: float) -> str:
    return f"{_pct(a, q) / _pct(b, q):.2f}"


if __name__ == "__main__":
    started = time.perf_counter()
    run()
    print(f"({time.perf_counter() - started:.1f} s)")
