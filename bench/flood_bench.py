"""A flood: millions of real-shaped messages through ``proxy -- flood_server.py`` as fast as
both ends go, and what analytics made of them.

The client (this process) sends ``initialize``, then threads of turns, each turn steered once,
keeping 16 requests outstanding (as a busy client with several threads would); the scripted
server (flood_server.py) answers each
with the real-shaped lines of shapes.py, 87% of them ``item/*`` deltas. The bench reads the
server's output until every line arrived, asks the proxy for ``rpcAnalytics/status`` (answered
once everything relayed before it was analysed) and reports: messages relayed (both ways) and
how fast, the thread, turn and steer events produced against those the session holds, what
analytics skipped or dropped, and the proxy's peak RSS (VmHWM). The same flood straight from
the server, without the proxy, is timed for comparison.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from shapes import Shapes  # noqa: E402

PROXY = [sys.executable, "-m", "codex_rpc_analytics", "proxy"]
SERVER = [sys.executable, str(BENCH / "flood_server.py")]
STATUS = b'{"id":"flood-status","method":"rpcAnalytics/status"}\n'
# Requests a client has outstanding at once (a turn and its steer are two).
IN_FLIGHT = 16


def plan(messages: int, turns_per_thread: int = 5
         ) -> tuple[list[tuple[bytes, int]], int, int, int]:
    """For about ``messages`` messages both ways: each request with the number of server
    lines that answer it, and the numbers of threads, turns and server lines."""
    shapes = Shapes()
    per_turn = 2 + 2 + len(shapes.turn_first) + len(shapes.turn_second)
    per_thread = 1 + 3 + turns_per_thread * per_turn
    threads = max(1, (messages - 3) // per_thread)
    turns = threads * turns_per_thread
    requests = [(shapes.request(shapes.initialize, 0) + b"\n", 1),
                (shapes.initialized + b"\n", 0)]
    next_id = 1
    turn_number = 0
    for thread_number in range(threads):
        thread = shapes.thread_id(thread_number)
        requests.append((shapes.request(shapes.thread_start, next_id) + b"\n", 3))
        next_id += 1
        for _ in range(turns_per_thread):
            turn = shapes.turn_id(turn_number)
            requests.append((shapes.request(shapes.turn_start, next_id, thread) + b"\n",
                             1 + len(shapes.turn_first)))
            requests.append((shapes.request(shapes.turn_steer, next_id + 1, thread, turn)
                             + b"\n", 1 + len(shapes.turn_second)))
            next_id += 2
            turn_number += 1
    server_lines = sum(answer for _, answer in requests)
    return requests, threads, turns, server_lines


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def flood(command: list[str], requests: list[tuple[bytes, int]], server_lines: int,
          status: bool) -> dict[str, object]:
    """Requests go out as a client with ``IN_FLIGHT`` requests outstanding sends them: the
    next one once the answer of the one ``IN_FLIGHT`` before it has arrived in full."""
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               bufsize=0)
    assert process.stdin is not None and process.stdout is not None
    in_fd, out_fd = process.stdin.fileno(), process.stdout.fileno()
    answered_by = []  # server lines that must have arrived before request i is sent
    total = 0
    for _line, answer in requests:
        answered_by.append(total)
        total += answer
    started = time.perf_counter()
    lines = received = sent = 0
    sent_bytes = 0
    while lines < server_lines:
        batch = []
        while sent < len(requests) and (sent < IN_FLIGHT
                                        or answered_by[sent - IN_FLIGHT + 1] <= lines):
            batch.append(requests[sent][0])
            sent += 1
        if batch:
            data = b"".join(batch)
            sent_bytes += len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(in_fd, view):]
        chunk = os.read(out_fd, 1 << 20)
        if not chunk:
            raise RuntimeError(f"output ended after {lines} of {server_lines} lines")
        lines += chunk.count(b"\n")
        received += len(chunk)
    elapsed = time.perf_counter() - started
    result: dict[str, object] = {"seconds": elapsed, "bytes": received + sent_bytes}
    if status:
        os.write(in_fd, STATUS)
        answer = b""
        while not answer.endswith(b"\n"):
            answer += os.read(out_fd, 1 << 20)
        result["analysed_after"] = time.perf_counter() - started
        result["status"] = json.loads(answer)["result"]
        result["peak_rss_mib"] = _peak_rss_mib(process.pid)
    process.stdin.close()
    process.stdout.read()
    process.wait(60)
    return result


# Tiny sizes for `bench/run.py --smoke`: the bench runs, its figures mean nothing.
SMOKE = {"messages": 20_000}


def run(messages: int = 3_000_000) -> dict[str, float]:
    requests, threads, turns, server_lines = plan(messages)
    total = server_lines + len(requests)
    with tempfile.TemporaryDirectory() as tmp:
        proxy = [*PROXY, "--state-dir", str(Path(tmp) / "state"), "--", *SERVER]
        direct = flood(SERVER, requests, server_lines, status=False)
        through = flood(proxy, requests, server_lines, status=True)
    status = through["status"]
    assert isinstance(status, dict)
    by_type = status["events"]["by_type"]
    expected = {"codex_thread_initialized": threads, "codex_turn_event": turns,
                "codex_turn_steer_event": turns}
    lost = {kind: want - by_type.get(kind, 0) for kind, want in expected.items()}
    relay = status["relay"]
    skipped_lines = sum(relay[d].get("bulk_skipped_lines", 0) for d in ("c2s", "s2c"))
    dropped = sum(relay[d]["analytics_dropped_bytes"] for d in ("c2s", "s2c"))
    seconds = float(through["seconds"])  # type: ignore[arg-type]
    figures = {
        "flood_messages": total,
        "flood_mb": round(float(through["bytes"]) / 1e6),  # type: ignore[arg-type]
        "flood_proxy_msgs_per_s": round(total / seconds),
        "flood_direct_msgs_per_s": round(total / float(direct["seconds"])),  # type: ignore[arg-type]
        "flood_analysed_after_s": round(float(through["analysed_after"]), 2),  # type: ignore[arg-type]
        "flood_events_expected": sum(expected.values()),
        "flood_events_produced": sum(by_type.get(kind, 0) for kind in expected),
        "flood_thread_turn_events_lost": sum(lost.values()),
        "flood_dropped_bytes": dropped,
        "flood_skipped_lines": skipped_lines,
        "flood_peak_rss_mib": round(float(through["peak_rss_mib"]), 1),  # type: ignore[arg-type]
    }
    print(f"flood: {total:,} real-shaped messages ({figures['flood_mb']} MB, {turns:,} turns "
          f"in {threads:,} threads), through the proxy {figures['flood_proxy_msgs_per_s']:,} "
          f"msgs/s, server straight to the client {figures['flood_direct_msgs_per_s']:,} msgs/s;"
          f" everything analysed {figures['flood_analysed_after_s']} s after the start")
    print(f"flood: events produced {figures['flood_events_produced']:,} of "
          f"{figures['flood_events_expected']:,} expected (lost: "
          + ", ".join(f"{kind} {n:,}" for kind, n in lost.items())
          + f"; target 0); analytics skipped {skipped_lines:,} bulk lines, dropped "
          f"{dropped / 1e6:.1f} MB unanalysed; proxy peak RSS {figures['flood_peak_rss_mib']} "
          "MiB (target <= 150)")
    return figures


if __name__ == "__main__":
    run(int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000)
