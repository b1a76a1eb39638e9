"""Three collectors on one real PostgreSQL, sixteen senders at once, and the faults that matter:
a collector killed with SIGKILL and PostgreSQL crashed and restarted mid-run. Afterwards every
event the senders committed is in the store exactly once (by id and by content), and no
sender's outbox holds anything pending.

Senders: real ``codex-rpc-analytics proxy`` subprocesses, each around a scripted app-server
that plays a session recorded from codex 0.169.0 (driven like the bundled example), several
sessions each; and direct sink clients (``Delivery`` with the HTTP sink, as an in-process host
runs it). Every sender has its own ingest token, so its events carry its own source, and
reaches the collectors through the config file's ``token_file``, as a developer's machine does.
The three collectors share one port (``--reuse-port``): the kernel spreads connections over
them, and when one is killed the senders' retries land on the other two.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg

from codex_rpc_analytics.cli.example_command import example_transcript, proxy_command
from codex_rpc_analytics.collector import add_token
from codex_rpc_analytics.delivery import Delivery, HttpSinkSpec, Outbox, OutboxError, RetryPolicy
from codex_rpc_analytics.examples.scripted_server import Script
from tests.delivery.support import make_event
from tests.pgserver import PgServer

PROXIES = 10
SESSIONS_PER_PROXY = 2
CLIENTS = 6
EVENTS_PER_CLIENT = 400
BURST = 20
EVENTS_PER_SESSION = 7  # the bundled recorded session
TIMEOUT_S = 120.0


class Collectors:
    """``collect`` processes on one database, all listening on one port."""

    def __init__(self, dsn: str, tokens: Path, count: int) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        port = 0
        for _ in range(count):
            proc = subprocess.Popen(
                [sys.executable, "-m", "codex_rpc_analytics", "collect", "--store", dsn,
                 "--listen", f"127.0.0.1:{port}", "--reuse-port", "--tokens", str(tokens)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True)
            self.procs.append(proc)
            assert proc.stderr is not None
            line = proc.stderr.readline()  # the announcement, once it accepts connections
            assert line.startswith("listening on "), line
            port = int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{port}/"

    def stop(self) -> list[str]:
        logs = []
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
            logs.append(err)
        return logs


def write_config(root: Path, url: str, token: str) -> Path:
    token_file = root / "collector.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    config = root / "config.toml"
    config.write_text(f'[[sinks]]\nurl = "{url}"\ntoken_file = "{token_file}"\n')
    return config


class Progress:
    """Recorded sessions finished so far, across every proxy: the clock the clients follow,
    so their bursts spread over the whole run instead of all arriving first."""

    def __init__(self) -> None:
        self._done = 0
        self._changed = threading.Condition()

    def session_done(self) -> None:
        with self._changed:
            self._done += 1
            self._changed.notify_all()

    def wait_for(self, sessions: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self._done >= sessions, TIMEOUT_S)


def run_proxy_sessions(root: Path, config: Path, sessions: int, progress: Progress) -> None:
    """Recorded sessions through a real proxy, one after another, sharing one outbox."""
    transcript = example_transcript()
    script = Script.load(transcript)
    env = {**os.environ, "CODEX_RPC_ANALYTICS_CONFIG": str(config)}
    for _ in range(sessions):
        proxy = subprocess.Popen(proxy_command(root / "state", transcript), env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proxy.stdin is not None and proxy.stdout is not None
        for _ in script.opening:
            proxy.stdout.readline()
        for line, replies in script.steps:
            proxy.stdin.write(line + b"\n")
            proxy.stdin.flush()
            for _ in replies:
                proxy.stdout.readline()
        proxy.stdin.close()
        proxy.stdout.read()
        assert proxy.wait(60) == 0
        progress.session_done()


def flush(root: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEX_RPC_ANALYTICS_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "codex_rpc_analytics", "flush", "--state-dir",
         str(root / "state"), "--timeout", "60"],
        env=env, capture_output=True, text=True, timeout=90, check=False)


def run_client(root: Path, url: str, token_file: Path, index: int, progress: Progress) -> Delivery:
    """A direct sink client submitting its events in bursts as the proxies' sessions go on;
    returns it still running."""
    delivery = Delivery(
        state_dir=root / "state", sinks=[HttpSinkSpec(url, token_file=str(token_file))],
        batch_linger_s=0.02,
        retry_policy=RetryPolicy(base_s=0.05, cap_s=1.0, retry_after_cap_s=1.0,
                                 timeout_total_s=5.0, timeout_connect_s=1.0))
    delivery.start()
    bursts = EVENTS_PER_CLIENT // BURST
    for burst in range(bursts):
        progress.wait_for(burst * PROXIES * SESSIONS_PER_PROXY // bursts)
        delivery.submit([make_event(index * 100_000 + n, client=f"client-{index}",
                                    event_type="codex_turn_event")
                         for n in range(burst * BURST, (burst + 1) * BURST)])
    return delivery


async def stored_count(dsn: str) -> int:
    """Events in the store now; 0 while PostgreSQL is restarting."""
    try:
        conn = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError):
        return 0
    try:
        exists = await conn.fetchval("SELECT to_regclass('events') IS NOT NULL")
        return int(await conn.fetchval("SELECT COUNT(*) FROM events")) if exists else 0
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return 0
    finally:
        await conn.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling a condition, not a stand-in for one


def outbox_events(root: Path) -> tuple[list[tuple[str, bytes]], dict[str, tuple[int, int]], int]:
    """(event id, payload) of every committed event, (pending, rejected) per sink, and how
    many deliveries took more than one attempt."""
    outbox = Outbox.open_readonly(root / "state")
    try:
        rows = [(i, bytes(p)) for i, p in
                outbox.query("SELECT event_id, payload FROM events ORDER BY seq")]
        counts = {k: (c.pending, c.rejected) for k, c in outbox.sink_counts().items()}
        retried = outbox.query("SELECT COUNT(*) FROM deliveries WHERE attempts > 1")[0][0]
    finally:
        outbox.close()
    return rows, counts, int(retried)


def answered_503(root: Path) -> int:
    """Deliveries of a sender that a collector answered 503 (the store is down) so far."""
    try:
        outbox = Outbox.open_readonly(root / "state")
    except OutboxError:  # not created yet, or its schema is being written right now
        return 0
    try:
        return int(outbox.query(
            "SELECT COUNT(*) FROM deliveries WHERE last_error LIKE 'HTTP 503%'")[0][0])
    except sqlite3.Error:
        return 0
    finally:
        outbox.close()


def test_three_collectors_sixteen_senders_a_kill_and_a_database_restart(
    pg_server: PgServer, pg_dsn: str, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    senders = [f"proxy-{i}" for i in range(PROXIES)] + [f"client-{i}" for i in range(CLIENTS)]
    roots = {name: tmp_path / name for name in senders}
    token_of = {name: add_token(tokens, name) for name in senders}
    collectors = Collectors(pg_dsn, tokens, 3)
    configs = {}
    for name, root in roots.items():
        root.mkdir()
        configs[name] = write_config(root, collectors.url, token_of[name])
    expected_client_events = CLIENTS * EVENTS_PER_CLIENT
    expected = expected_client_events + PROXIES * SESSIONS_PER_PROXY * EVENTS_PER_SESSION
    progress = Progress()

    def stored() -> int:
        return asyncio.run(stored_count(pg_dsn))

    logs: list[str] = []
    try:
        with ThreadPoolExecutor(max_workers=len(senders)) as pool:
            proxy_runs = [pool.submit(run_proxy_sessions, roots[f"proxy-{i}"],
                                      configs[f"proxy-{i}"], SESSIONS_PER_PROXY, progress)
                          for i in range(PROXIES)]
            client_runs = [pool.submit(run_client, roots[f"client-{i}"], collectors.url,
                                       roots[f"client-{i}"] / "collector.token", i, progress)
                           for i in range(CLIENTS)]
            # Faults mid-run, each once a share of the traffic is stored.
            wait_for(lambda: stored() >= expected // 4, "a quarter stored")
            victim = collectors.procs[0]
            victim.send_signal(signal.SIGKILL)
            assert victim.wait(10) == -signal.SIGKILL
            wait_for(lambda: stored() >= expected // 2, "half stored")
            # A crash (recovery on start; nothing committed is lost), and down until a sender
            # has been answered 503 for it, so the fault is certain to hit traffic.
            pg_server.stop("immediate")
            wait_for(lambda: any(answered_503(root) for root in roots.values()),
                     "a sender to be answered 503")
            pg_server.start()
            for run in proxy_runs:
                run.result(timeout=TIMEOUT_S)
            deliveries = [run.result(timeout=TIMEOUT_S) for run in client_runs]
        for delivery in deliveries:
            result = delivery.close(60)
            assert result.complete, result
        # Whatever a proxy could not ship before it exited: `flush`, as a user would.
        with ThreadPoolExecutor(max_workers=PROXIES) as pool:
            flushed = list(pool.map(lambda i: flush(roots[f"proxy-{i}"], configs[f"proxy-{i}"]),
                                    range(PROXIES)))
        for done in flushed:
            assert done.returncode == 0, done.stdout + done.stderr
    finally:
        logs = collectors.stop()

    # What the senders committed, by source.
    sent_ids: set[tuple[str, str]] = set()
    sent_content: Counter[tuple[str, str]] = Counter()
    retried = 0
    for name, root in roots.items():
        rows, counts, retries = outbox_events(root)
        retried += retries
        assert counts == {collectors.url: (0, 0)}, (name, counts)  # nothing pending or parked
        sent_ids.update((name, event_id) for event_id, _ in rows)
        sent_content.update((name, payload.decode()) for _, payload in rows)
    assert retried > 0  # the faults were felt: some batches had to be sent again
    assert sum(sent_content[k] for k in sent_content if k[0].startswith("proxy-")) == (
        PROXIES * SESSIONS_PER_PROXY * EVENTS_PER_SESSION)
    assert sum(sent_content[k] for k in sent_content if k[0].startswith("client-")) == (
        expected_client_events)

    async def store_rows() -> list[tuple[str, str, str]]:
        conn = await asyncpg.connect(pg_dsn)
        try:
            return [tuple(r) for r in await conn.fetch(
                "SELECT source, event_id, payload::text FROM events")]
        finally:
            await conn.close()

    rows = asyncio.run(store_rows())
    by_id = Counter((source, event_id) for source, event_id, _ in rows)
    assert set(by_id) == sent_ids and max(by_id.values()) == 1  # every id, once
    by_content = Counter((source, payload) for source, _, payload in rows)
    assert by_content == sent_content  # every event's bytes, as often as they were sent
    assert all(json.loads(p)["event_type"] for _, _, p in rows[:5])
    # The survivors saw the database go away and come back; no token reached a log.
    joined = "".join(logs)
    assert "store unavailable" in joined and "store reachable again" in joined
    assert not any(token in joined for token in token_of.values())
