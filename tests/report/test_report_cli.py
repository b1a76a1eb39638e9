"""`report` and `stats --json` as a user runs them: a subprocess, one-line errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from codex_rpc_analytics.delivery import Outbox
from tests.report.support import SCOPE
from tests.support import replayed_events

WINDOW = ["--since", str(SCOPE.since_ms // 1000), "--until", str(SCOPE.until_ms // 1000)]


def run_cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEX_RPC_ANALYTICS_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "codex_rpc_analytics", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_report_from_the_local_outbox_is_a_private_file(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    outbox = Outbox.open(state_dir)
    events = replayed_events()
    outbox.commit([(json.loads(e)["event_type"], e, 1000.0 + i) for i, e in enumerate(events)],
                  [])
    outbox.close()
    page = tmp_path / "mine.html"
    done = run_cli("report", "--since", "0", "-o", str(page), state_dir=state_dir)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    text = page.read_text(encoding="utf-8")
    turns = sum(1 for e in events if json.loads(e)["event_type"] == "codex_turn_event")
    assert f'data-figure="turns" data-value="{turns}"' in text
    assert "https://" not in text.split("<script>", 1)[0]  # nothing to fetch in the markup


def test_report_to_standard_output(sqlite_store: str, tmp_path: Path) -> None:
    done = run_cli("report", "--store", sqlite_store, *WINDOW, "--client", "nobody-uses-this",
                   "-o", "-", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<!DOCTYPE html>")
    assert "No turns in this window." in done.stdout
    assert "client nobody-uses-this" in done.stdout
    assert done.stderr == ""


def test_minus_v_says_where_the_report_reads_and_which_period(sqlite_store: str,
                                                              tmp_path: Path) -> None:
    done = run_cli("report", "-v", "--store", sqlite_store, *WINDOW, "--model", "gpt-5",
                   "-o", "-", state_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        f"codex-rpc-analytics: debug: report: {sqlite_store}, from "
        f"{_iso(SCOPE.since_ms)} to {_iso(SCOPE.until_ms)}, model gpt-5\n")
    # A PostgreSQL URL is named without its password, in the -v line as in the error.
    unreachable = run_cli("report", "-v", "--store", "postgresql://u:s3cret@127.0.0.1:9/x",
                          "-o", "-", state_dir=tmp_path)
    assert unreachable.returncode == 1
    assert "report: postgresql://u:***@127.0.0.1:9/x, from " in unreachable.stderr
    assert "s3cret" not in unreachable.stderr


def _iso(ms: int) -> str:
    import datetime

    moment = datetime.datetime.fromtimestamp(ms // 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_bad_input_gives_one_line_errors(sqlite_store: str, tmp_path: Path) -> None:
    cases = [
        (["report", "--store", sqlite_store, "--since", "1d", "--until", "2d", "-o", "x.html"],
         2, "--until (2d) must be later than --since (1d)"),
        (["report", "--store", sqlite_store, "--since", "yesterday", "-o", "x.html"],
         2, "--since yesterday: expected"),
        (["report", "--store", sqlite_store], 2, "-o/--output"),
        (["report", "--store", str(tmp_path / "none.sqlite3"), "-o", "x.html"],
         1, "no store at"),
        (["report", "--store", sqlite_store, "-o", str(tmp_path / "no" / "dir.html")],
         1, "cannot write"),
        (["report", "--state-dir", str(tmp_path / "empty"), "-o", "x.html"], 1,
         "nothing recorded yet"),
    ]
    for args, status, message in cases:
        done = run_cli(*args, state_dir=tmp_path)
        assert done.returncode == status, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_stats_json_gives_the_text_figures_for_scripts(sqlite_store: str,
                                                       tmp_path: Path) -> None:
    text = run_cli("stats", "--store", sqlite_store, state_dir=tmp_path)
    as_json = run_cli("stats", "--store", sqlite_store, "--json", state_dir=tmp_path)
    assert text.returncode == as_json.returncode == 0, text.stderr + as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["kind"] == "store"
    assert f"turns: {figures['turns']['total']}" in text.stdout.splitlines()
    assert sum(figures["turns"]["by_status"].values()) == figures["turns"]["total"]
    assert figures["events"]["total"] == sum(figures["events"]["by_type"].values())
    assert set(figures["sources"]) >= {"recorded", "web"}
    assert f"events: {figures['events']['total']} (" in text.stdout


def test_read_tokens_have_their_own_file_and_prefix(tmp_path: Path) -> None:
    added = run_cli("collect", "token", "add", "--read", "team-lead", state_dir=tmp_path)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    assert token.startswith("cra_read_") and len(token) > 40
    stored = tmp_path / "collector-read-tokens"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert token not in stored.read_text() and "team-lead sha256:" in stored.read_text()
    assert not (tmp_path / "collector-tokens").exists()
    listed = run_cli("collect", "token", "list", "--read", state_dir=tmp_path)
    assert listed.stdout.splitlines() == ["team-lead"]
    assert run_cli("collect", "token", "list", state_dir=tmp_path).stdout == ""
