"""`kill -9` of the proxy right after a thread/start response loses no event (issue 4).

The proxy runs as a real subprocess around the scripted server built from the recorded
session; once the client has received the thread/start result and the event is in the outbox
(waited for by polling the database, never by sleeping), the proxy is SIGKILLed. The event must
still be there and a later `flush` must deliver it to the sink the proxy was given.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from codex_rpc_analytics.delivery.retry import RetryPolicy
from codex_rpc_analytics.delivery.shipper import LEASE_MARGIN_S
from codex_rpc_analytics.examples.scripted_server import Script
from tests.delivery.support import write_chatgpt_auth
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


async def test_kill_9_mid_request_then_an_immediate_flush_takes_over_and_delivers_once(
    tmp_path: Path, aiohttp_server: Any,
) -> None:
    """The proxy is SIGKILLed while its POST waits for the collector's answer (the request
    is in flight, its rows leased for 40 s); `flush --timeout 20`, started at once, can only
    succeed by taking the dead process's rows over at once, and delivers every event exactly
    once."""
    name = "fakeauth_full_flow"
    accepted: list[str] = []
    held = asyncio.Event()

    async def collector(request: web.Request) -> web.Response:
        await request.read()
        ids = request.headers["X-Codex-Rpc-Analytics-Event-Ids"].split(",")
        if not held.is_set():
            held.set()
            await asyncio.Event().wait()  # never answers: the sender dies waiting
        accepted.extend(ids)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", collector)
    server = await aiohttp_server(app)
    state_dir = tmp_path / "state"
    codex_home = tmp_path / "codex-home"
    write_chatgpt_auth(codex_home)  # so that no version disables the sink for want of a login
    sink = ["--sink", f"http://127.0.0.1:{server.port}/", "--codex-home", str(codex_home)]
    proxy = await asyncio.create_subprocess_exec(
        *CLI, "proxy", "--state-dir", str(state_dir), *sink, "--", *SCRIPTED,
        str(transcript(name)), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL)
    assert proxy.stdin is not None and proxy.stdout is not None
    script = Script.load(transcript(name))
    for _ in script.opening:
        await proxy.stdout.readline()
    for line, replies in script.steps:
        proxy.stdin.write(line + b"\n")
        for _ in replies:
            await asyncio.wait_for(proxy.stdout.readline(), 10)
    expected = recorded_events(name)  # as many as codex sent (times differ in a live run)
    deadline = time.monotonic() + 10
    while len(committed_payloads(state_dir)) != len(expected):
        assert time.monotonic() < deadline, "events never committed"
        await asyncio.sleep(0.01)  # polling a condition (the database), not synchronising
    await asyncio.wait_for(held.wait(), 10)  # the POST is in flight, unanswered
    proxy.kill()
    assert await proxy.wait() == -signal.SIGKILL

    # The lease (the sender's request timeout, 10 s, plus a 30 s margin) outlives the flush's
    # 20 s: waiting for it would end in exit 1 with the events still pending.
    assert LEASE_MARGIN_S + RetryPolicy().timeout_total_s > 20
    flush = await asyncio.create_subprocess_exec(
        *CLI, "flush", "--state-dir", str(state_dir), "--codex-home", str(codex_home),
        "--timeout", "20", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await flush.communicate()
    assert flush.returncode == 0, (out + err).decode()
    with sqlite3.connect(f"file:{state_dir / 'outbox.sqlite3'}?mode=ro", uri=True) as db:
        ids = [row[0] for row in db.execute("SELECT event_id FROM events ORDER BY seq")]
    assert len(ids) == len(expected)
    assert sorted(accepted) == sorted(ids)  # every event, each exactly once
