"""`kill -9` of the proxy right after a thread/start response loses no event (issue 4).

The proxy runs as a real subprocess around the scripted server built from the recorded
session; once the client has received the thread/start result and the event is in the outbox
(waited for by polling the database, never by sleeping), the proxy is SIGKILLed. The event must
still be there and a later `flush` must deliver it to the sink the proxy was given.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.support import recorded_events, transcript

CLI = [sys.executable, "-m", "codex_rpc_analytics"]
SCRIPTED = [sys.executable, "-m", "codex_rpc_analytics.examples.scripted_server"]


def committed_payloads(state_dir: Path) -> list[bytes]:
    database = state_dir / "outbox.sqlite3"
    if not database.exists():
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        try:
            rows = connection.execute("SELECT payload FROM events ORDER BY rowid").fetchall()
        except sqlite3.OperationalError:
            return []  # the schema is not there yet
    return [bytes(row[0]) for row in rows]


def test_kill_9_after_thread_start_loses_nothing(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    sink_dir = tmp_path / "not-yet"  # a file here makes the sink fail until flush time
    sink_dir.write_text("blocks the jsonl sink")
    proxy = subprocess.Popen(
        [*CLI, "proxy", "--state-dir", str(state_dir), "--sink",
         f"jsonl:{sink_dir / 'events.jsonl'}", "--", *SCRIPTED,
         str(transcript("gating_g1_no_analytics_section"))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proxy.stdin is not None and proxy.stdout is not None
    requests = [json.loads(row)["raw"] for row in
                transcript("gating_g1_no_analytics_section").read_text().splitlines()
                if json.loads(row)["dir"] == "c2s"]
    for request in requests:
        proxy.stdin.write(request.encode() + b"\n")
    proxy.stdin.flush()
    while b'"result":{"thread"' not in proxy.stdout.readline():
        pass  # the client now holds the thread/start result
    expected = recorded_events("gating_g1_no_analytics_section")
    deadline = time.monotonic() + 10
    while committed_payloads(state_dir) != expected:
        assert time.monotonic() < deadline, "event never committed"
        time.sleep(0.01)  # polling a condition (the database), not synchronising by time
    os.kill(proxy.pid, signal.SIGKILL)
    proxy.wait(10)
    assert proxy.returncode == -signal.SIGKILL
    assert committed_payloads(state_dir) == expected
    sink_dir.unlink()
    sink_dir.mkdir()
    flushed = subprocess.run([*CLI, "flush", "--state-dir", str(state_dir)],
                             capture_output=True, text=True, timeout=60, check=False)
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert (sink_dir / "events.jsonl").read_bytes().splitlines() == expected
