"""`stats` and `events --store`: a collector's store reads like the local outbox."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codex_rpc_analytics.delivery import Outbox
from codex_rpc_analytics.store import make_row, open_store
from tests.support import replayed_events

EVENTS = replayed_events()


def run_cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEX_RPC_ANALYTICS_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "codex_rpc_analytics", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def filled(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """An outbox holding the replayed sessions, and a store holding the same events."""
    state_dir = tmp_path / "state"
    outbox = Outbox.open(state_dir)
    outbox.commit([(json.loads(e)["event_type"], e, 1000.0 + i) for i, e in enumerate(EVENTS)],
                  ["jsonl:/dev/null"])
    ids = [row[0] for row in outbox.query("SELECT event_id FROM events ORDER BY seq")]
    outbox.close()
    spec = (str(tmp_path / "team.sqlite3") if request.param == "sqlite"
            else str(request.getfixturevalue("pg_dsn")))

    async def fill() -> None:
        store = await open_store(spec, migrate=True)
        try:
            rows = [make_row("alice", i, e, 5_000) for i, e in zip(ids, EVENTS, strict=True)]
            await store.ingest(rows)
        finally:
            await store.close()

    asyncio.run(fill())
    return state_dir, spec


def test_stats_on_a_store_says_what_it_says_on_the_outbox(filled: tuple[Path, str]) -> None:
    state_dir, spec = filled
    local = run_cli("stats", state_dir=state_dir)
    team = run_cli("stats", "--store", spec, state_dir=state_dir)
    assert local.returncode == 0 and team.returncode == 0, local.stderr + team.stderr
    local_lines, team_lines = local.stdout.splitlines(), team.stdout.splitlines()
    assert local_lines[0].startswith("outbox: ") and team_lines[0].startswith("store: ")
    # Events, threads and turns: the same lines; then sinks for an outbox, sources for a store.
    assert team_lines[1:8] == local_lines[1:8]
    assert f"events: {len(EVENTS)} (" in team_lines[1]
    assert team_lines[8] == f"sources: alice {len(EVENTS)}"
    assert "jsonl:/dev/null: delivered 0" in local.stdout


def test_events_on_a_store_prints_the_same_events(filled: tuple[Path, str]) -> None:
    state_dir, spec = filled
    for args in ([], ["--type", "codex_turn_event"]):
        local = run_cli("events", *args, state_dir=state_dir)
        team = run_cli("events", "--store", spec, *args, state_dir=state_dir)
        assert local.returncode == 0 and team.returncode == 0, local.stderr + team.stderr
        assert local.stdout.encode().splitlines() == [
            e for e in EVENTS if not args or b'"codex_turn_event"' in e]
        assert team.stdout == local.stdout  # the sender's bytes, on both dialects
    # --since is when the store received them (5 s after the epoch here): none are that recent.
    recent = run_cli("events", "--store", spec, "--since", "1h", state_dir=state_dir)
    assert recent.returncode == 0 and recent.stdout == ""


def test_a_store_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    for spec in (str(tmp_path / "none.sqlite3"), "postgresql://nobody@127.0.0.1:1/none"):
        result = run_cli("stats", "--store", spec, state_dir=tmp_path)
        assert result.returncode == 1
        assert result.stderr.startswith("codex-rpc-analytics: error: ")
        assert result.stderr.count("\n") == 1, result.stderr
