"""`flush`, `stats` and `events` as users run them, on a real outbox in a temporary state dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codex_rpc_analytics.delivery import Delivery, parse_sink_spec
from tests.support import recorded_events

EVENTS = recorded_events("fakeauth_full_flow")


def run_cli(*args: str, state_dir: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEX_RPC_ANALYTICS_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "codex_rpc_analytics", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def blocked_session(tmp_path: Path) -> tuple[Path, Path]:
    """A session whose jsonl sink could not be written: every event is pending for it."""
    state_dir = tmp_path / "state"
    blocker = tmp_path / "out"
    blocker.write_text("a file where the sink expects a directory")
    sink = f"jsonl:{blocker / 'events.jsonl'}"
    delivery = Delivery(state_dir=state_dir, sinks=[parse_sink_spec(sink)])
    delivery.start()
    delivery.submit([(json.loads(e)["event_type"], e) for e in EVENTS])
    result = delivery.close(1.0)
    assert not result.complete or sum(c.pending for c in result.sinks.values()) == len(EVENTS)
    return state_dir, blocker


def test_stats_summarises_threads_turns_and_sinks(blocked_session: tuple[Path, Path]) -> None:
    state_dir, _ = blocked_session
    result = run_cli("stats", state_dir=state_dir)
    assert result.returncode == 0, result.stderr
    assert "threads initialized: 4" in result.stdout
    assert "by client: probe 4" in result.stdout
    assert "new 2" in result.stdout and "resumed 1" in result.stdout
    assert "forked 1" in result.stdout
    assert "turns: 3" in result.stdout and "completed 3" in result.stdout
    assert "pending 7" in result.stdout


def test_events_prints_stored_events_with_filters(blocked_session: tuple[Path, Path]) -> None:
    state_dir, _ = blocked_session
    every = run_cli("events", state_dir=state_dir)
    assert every.stdout.encode().splitlines() == EVENTS
    turns = run_cli("events", "--type", "codex_turn_event", state_dir=state_dir)
    assert turns.stdout.encode().splitlines() == recorded_events("fakeauth_full_flow",
                                                                 "codex_turn_event")
    recent = run_cli("events", "--since", "1h", state_dir=state_dir)
    assert len(recent.stdout.splitlines()) == len(EVENTS)
    future = run_cli("events", "--since", "2999-01-01T00:00:00+00:00", state_dir=state_dir)
    assert future.returncode == 0 and future.stdout == ""
    bad = run_cli("events", "--since", "last tuesday", state_dir=state_dir)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--since" in bad.stderr


def test_flush_reports_what_remains_then_delivers_once_the_sink_works(
    blocked_session: tuple[Path, Path],
) -> None:
    state_dir, blocker = blocked_session
    still_blocked = run_cli("flush", "--timeout", "2", state_dir=state_dir)
    assert still_blocked.returncode == 1
    assert "7 events still pending" in still_blocked.stdout
    blocker.unlink()
    blocker.mkdir()
    delivered = run_cli("flush", state_dir=state_dir)
    assert delivered.returncode == 0, delivered.stdout + delivered.stderr
    assert (blocker / "events.jsonl").read_bytes().splitlines() == EVENTS
    again = run_cli("flush", state_dir=state_dir)
    assert again.returncode == 0 and "nothing pending" in again.stdout
    assert (blocker / "events.jsonl").read_bytes().splitlines() == EVENTS  # exactly once


@pytest.mark.parametrize("args", [
    ["flush", "--sink", "ftp://example.invalid/"],
    ["flush", "--sink", "-"],
    ["flush", "--sink", "http://example.invalid/backend-api/"],
    ["flush", "--timeout", "0"],
])
def test_bad_sinks_and_flags_are_one_line_errors(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(*args, state_dir=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("codex-rpc-analytics: ")


@pytest.mark.parametrize("exists", [False, True])
def test_a_state_dir_where_nothing_was_recorded_says_so_and_exits_0(
    tmp_path: Path, exists: bool
) -> None:
    state_dir = tmp_path / "never-used"
    if exists:
        state_dir.mkdir()
    stats = run_cli("stats", state_dir=state_dir)
    assert (stats.returncode, stats.stderr) == (0, "")
    assert stats.stdout == f"no events recorded yet in {state_dir}\n"
    # A script gets the figures it reads on a used outbox, every count zero: not an error.
    as_json = run_cli("stats", "--json", state_dir=state_dir)
    assert (as_json.returncode, as_json.stderr) == (0, "")
    figures = json.loads(as_json.stdout)
    assert figures["events"] == {"total": 0, "by_type": {}}
    assert (figures["threads"]["initialized"], figures["turns"]["total"]) == (0, 0)
    assert (figures["kind"], figures["sinks"]) == ("outbox", {})
    events = run_cli("events", state_dir=state_dir)
    assert (events.returncode, events.stdout, events.stderr) == (0, "", "")
    flush = run_cli("flush", state_dir=state_dir)
    assert (flush.returncode, flush.stderr) == (0, "")
    assert flush.stdout.startswith("nothing pending")
    requeue = run_cli("requeue", state_dir=state_dir)
    assert (requeue.returncode, requeue.stderr) == (0, "")
    assert requeue.stdout.startswith("nothing rejected")
    assert state_dir.exists() == exists  # reading creates nothing


def test_stats_json_has_one_shape_empty_or_not(blocked_session: tuple[Path, Path],
                                               tmp_path: Path) -> None:
    """A script written against a used outbox reads a fresh one without special cases."""
    used = json.loads(run_cli("stats", "--json", state_dir=blocked_session[0]).stdout)
    empty = json.loads(run_cli("stats", "--json", state_dir=tmp_path / "fresh").stdout)
    assert set(used) == set(empty)
    for section in ("events", "threads", "turns"):
        assert set(used[section]) == set(empty[section]), section
    assert used["sinks"] and empty["sinks"] == {}
