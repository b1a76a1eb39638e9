"""`collect` and `collect token add` as users run them: real processes, real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_rpc_analytics.collector import TOKEN_PREFIX, TOKENS_FILENAME
from tests.support import replayed_events

PATH = "/codex/analytics-events/events"


def cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEX_RPC_ANALYTICS_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "codex_rpc_analytics", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


class CollectProcess:
    """``collect`` as a child process; ``url`` once it announced where it listens."""

    def __init__(self, *args: str, state_dir: Path) -> None:
        env = {**os.environ, "CODEX_RPC_ANALYTICS_STATE_DIR": str(state_dir)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "codex_rpc_analytics", "collect", "--listen", "127.0.0.1:0",
             *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        self.lines: list[str] = []
        for line in self.proc.stderr:  # blocks until the announcement (or the exit)
            self.lines.append(line)
            if line.startswith("listening on "):
                break
        else:
            raise AssertionError(f"collect exited: {''.join(self.lines)}")
        self.url = self.lines[-1].split()[2]

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, "".join(self.lines) + err


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"


def post(url: str, token: str, data: bytes, ids: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url.rstrip("/") + PATH, data=data, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "X-Codex-Rpc-Analytics-Event-Ids": ids})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_token_add_prints_the_token_once_and_keeps_only_its_hash(state_dir: Path) -> None:
    added = cli("collect", "token", "add", "team-berlin", state_dir=state_dir)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith(TOKEN_PREFIX) and len(token) > 40
    tokens_file = state_dir / TOKENS_FILENAME
    assert tokens_file.stat().st_mode & 0o777 == 0o600
    text = tokens_file.read_text()
    assert token not in text and "team-berlin sha256:" in text
    assert token not in added.stderr
    listed = cli("collect", "token", "list", state_dir=state_dir)
    assert listed.stdout.splitlines() == ["team-berlin"]
    bad = cli("collect", "token", "add", "no spaces", state_dir=state_dir)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1


def test_collect_with_no_flags_stores_in_the_state_dir(state_dir: Path) -> None:
    token = cli("collect", "token", "add", "alice", state_dir=state_dir).stdout.strip()
    collect = CollectProcess(state_dir=state_dir)
    try:
        events = replayed_events()
        data = b'{"events":[' + b",".join(events) + b"]}"
        ids = ",".join(f"e{i}" for i in range(len(events)))
        status, answer = post(collect.url, token, data, ids)
        assert status == 200, answer
        status, _ = post(collect.url, "cra_ingest_not-a-token", data, ids)
        assert status == 401
    finally:
        code, log = collect.stop()
    assert code == 0, log
    assert token not in log
    assert "stored" not in log  # each request is a -v detail
    store = state_dir / "collector.sqlite3"
    assert store.stat().st_mode & 0o777 == 0o600
    stats = cli("stats", "--store", str(store), state_dir=state_dir)
    assert f"events: {len(events)} (" in stats.stdout and "sources: alice" in stats.stdout


def test_minus_v_logs_each_request_the_collector_stored(state_dir: Path) -> None:
    token = cli("collect", "token", "add", "alice", state_dir=state_dir).stdout.strip()
    collect = CollectProcess("-v", state_dir=state_dir)
    try:
        events = replayed_events()
        data = b'{"events":[' + b",".join(events) + b"]}"
        ids = ",".join(f"e{i}" for i in range(len(events)))
        for _ in range(2):  # the second time, every event is a duplicate
            status, answer = post(collect.url, token, data, ids)
            assert status == 200, answer
    finally:
        code, log = collect.stop()
    assert code == 0, log
    assert (f"codex-rpc-analytics: debug: alice: stored {len(events)} events, 0 duplicates, "
            "0 refused\n") in log
    assert (f"codex-rpc-analytics: debug: alice: stored 0 events, {len(events)} duplicates, "
            "0 refused\n") in log
    assert token not in log


def test_bad_flags_are_one_line(state_dir: Path) -> None:
    for args, status in ((["--listen", "nowhere"], 2),
                         (["--store", "postgresql://u@127.0.0.1:1/db?sslmode=bogus"], 1)):
        result = cli("collect", *args, state_dir=state_dir)
        assert result.returncode == status, result.stderr
        assert result.stderr.startswith("codex-rpc-analytics: error: ")
        assert result.stderr.count("\n") == 1, result.stderr
