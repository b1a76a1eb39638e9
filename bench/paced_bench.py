"""A paced session: one real message every 10 ms, the rhythm of a codex session, through
``cat``, a bare poll relay around cat (bare_relay.py: no analytics at all, the floor of a
Python relay), a careful naive tap around cat (naive_tap.py) and ``proxy -- cat``, side by
side.

Each tick sends one line to each of the three in turn (the order rotates) and reads it back
whole before the next, so every round trip is timed alone and all three see the same machine
at the same moments. Lines are the real lines of the streaming recording, in order (deltas,
items, turns, thread results up to 3.4 KB). Reported per relay: CPU seconds of the relay
process over the measured messages (all its threads, from /proc/PID/task/*/schedstat, in ns;
for the relays without their child ``cat``), CPU per message (one message = one line relayed
to cat and back: two relays through a relay process, one through cat) and per relay, and the
round trip p50/p99. The figures the proxy answers for are its CPU per relay and its added p50
over ``cat``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RECORDING = REPO / "tests" / "fixtures" / "streaming" / "fakeauth_streaming_deltas.rpc.jsonl"
PROXY = [sys.executable, "-m", "codex_rpc_analytics", "proxy"]
NAIVE = [sys.executable, str(BENCH / "naive_tap.py")]
BARE = [sys.executable, str(BENCH / "bare_relay.py")]


def session_lines() -> list[bytes]:
    lines = []
    for text in RECORDING.read_text().splitlines():
        row = json.loads(text)
        if row["dir"] in ("c2s", "s2c"):
            lines.append(row["raw"].encode() + b"\n")
    return lines


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` so far, in ns."""
    total = 0
    tasks = Path(f"/proc/{pid}/task")
    for task in tasks.iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


class Relay:
    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        bufsize=0)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.in_fd = self.process.stdin.fileno()
        self.out_fd = self.process.stdout.fileno()
        self.samples: list[float] = []
        self.cpu_start = 0

    def round_trip(self, line: bytes) -> float:
        read, size = os.read, len(line)
        started = time.perf_counter()
        os.write(self.in_fd, line)
        got = len(read(self.out_fd, 1 << 20))
        while got < size:
            got += len(read(self.out_fd, 1 << 20))
        return time.perf_counter() - started

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.read()
        self.process.wait(30)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


# Tiny sizes for `bench/run.py --smoke`: the bench runs, its figures mean nothing.
SMOKE = {"seconds": 0.2, "interval": 0.010, "warmup": 5}


def run(seconds: float = 20.0, interval: float = 0.010, warmup: int = 50) -> dict[str, float]:
    lines = session_lines()
    messages = int(seconds / interval)
    with tempfile.TemporaryDirectory() as tmp:
        proxy = [*PROXY, "--state-dir", str(Path(tmp) / "state"), "--", "cat"]
        relays = [Relay("cat", ["cat"]), Relay("bare relay", [*BARE, "cat"]),
                  Relay("naive tap", [*NAIVE, "cat"]), Relay("proxy", proxy)]
        try:
            for index in range(warmup):
                for relay in relays:
                    relay.round_trip(lines[index % len(lines)])
            for relay in relays:
                relay.cpu_start = cpu_ns(relay.process.pid)
            start = time.perf_counter()
            for index in range(messages):
                line = lines[index % len(lines)]
                for shift in range(len(relays)):
                    relay = relays[(index + shift) % len(relays)]
                    relay.samples.append(relay.round_trip(line))
                pause = start + (index + 1) * interval - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            cpu = {relay.name: (cpu_ns(relay.process.pid) - relay.cpu_start) / 1e9
                   for relay in relays}
        finally:
            for relay in relays:
                relay.stop()
    figures: dict[str, float] = {"paced_messages": messages}
    us = 1e6
    for relay in relays:
        key = relay.name.replace(" ", "_")
        figures[f"paced_{key}_cpu_s"] = round(cpu[relay.name], 3)
        figures[f"paced_{key}_cpu_us_per_msg"] = round(cpu[relay.name] / messages * us, 1)
        relays_per_message = 1 if relay.name == "cat" else 2
        figures[f"paced_{key}_cpu_us_per_relay"] = round(
            cpu[relay.name] / messages / relays_per_message * us, 1)
        figures[f"paced_{key}_rtt_p50_us"] = round(_pct(relay.samples, 0.5) * us, 1)
        figures[f"paced_{key}_rtt_p99_us"] = round(_pct(relay.samples, 0.99) * us, 1)
    added = figures["paced_proxy_rtt_p50_us"] - figures["paced_cat_rtt_p50_us"]
    figures["paced_proxy_added_rtt_p50_us"] = round(added, 1)
    print(f"paced: {messages:,} real messages, one every {interval * 1e3:.0f} ms, each relayed "
          "to cat and back; CPU of the relay process over them, round trip per message:")
    for relay in relays:
        key = relay.name.replace(" ", "_")
        print(f"paced:   {relay.name:<10} CPU {figures[f'paced_{key}_cpu_s']:.3f} s = "
              f"{figures[f'paced_{key}_cpu_us_per_msg']:6.1f} us/msg, "
              f"{figures[f'paced_{key}_cpu_us_per_relay']:6.1f} us/relay "
              f"(x{cpu[relay.name] / max(cpu['cat'], 1e-9):.1f} cat); "
              f"RTT p50 {figures[f'paced_{key}_rtt_p50_us']:6.1f} us "
              f"p99 {figures[f'paced_{key}_rtt_p99_us']:7.1f} us")
    print(f"paced: proxy CPU {figures['paced_proxy_cpu_us_per_relay']} us per relayed message "
          f"(target <= 100; {figures['paced_proxy_cpu_us_per_msg']} us per round trip), added RTT "
          f"p50 over cat {added:.1f} us (target <= 100); CPU ratio proxy/naive tap "
          f"{cpu['proxy'] / max(cpu['naive tap'], 1e-9):.2f}, proxy/bare relay "
          f"{cpu['proxy'] / max(cpu['bare relay'], 1e-9):.2f}")
    return figures


if __name__ == "__main__":
    run(float(sys.argv[1]) if len(sys.argv) > 1 else 20.0)
