"""stats / events / flush as library functions: output and friendly errors."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

from codex_rpc_analytics.delivery import (
    Outbox,
    flush_command,
    parse_sink_spec,
    requeue_command,
)
from codex_rpc_analytics.store import events_command, stats_command
from tests.delivery.support import make_event


def _fill(state_dir: Path) -> list[tuple[str, bytes]]:
    events = [
        make_event(1, client="codex_vscode", mode="new"),
        make_event(2, client="codex_vscode", mode="resumed"),
        make_event(3, client="probe", mode="new"),
        make_event(4, event_type="codex_turn_event", status="completed"),
        make_event(5, event_type="codex_turn_event", status="completed"),
        make_event(6, event_type="codex_turn_event", status="interrupted"),
    ]
    outbox = Outbox.open(state_dir)
    outbox.commit([(t, p, 100.0 + i) for i, (t, p) in enumerate(events)], ["jsonl:/x"])
    outbox.close()
    return events


def test_stats_summary(state_dir: Path) -> None:
    _fill(state_dir)
    out = io.StringIO()
    assert stats_command(state_dir, out) == 0
    text = out.getvalue()
    assert "events: 6 (codex_thread_initialized 3, codex_turn_event 3)" in text
    assert "threads initialized: 3 (3 distinct threads)" in text
    assert "by client: codex_vscode 2, probe 1" in text
    assert "by initialization_mode: new 2, resumed 1" in text
    assert "turns: 3" in text
    assert "by status: completed 2, interrupted 1" in text
    assert "jsonl:/x: delivered 0, pending 6, rejected 0" in text


def test_events_filters_by_type_and_since(state_dir: Path) -> None:
    events = _fill(state_dir)
    out = io.StringIO()
    assert events_command(state_dir, out, ["codex_turn_event"], 104.0) == 0
    assert out.getvalue().encode() == b"".join(p + b"\n" for _, p in events[4:])
    everything = io.StringIO()
    assert events_command(state_dir, everything, [], None) == 0
    lines = everything.getvalue().splitlines()
    assert [json.loads(line)["event_params"]["thread_id"] for line in lines] == [
        f"thread-{i}" for i in range(1, 7)
    ]


def test_a_state_dir_with_nothing_recorded_is_not_an_error(tmp_path: Path) -> None:
    commands: list[Callable[[io.StringIO, io.StringIO], int]] = [
        lambda out, err: stats_command(tmp_path / "nope", out, err=err),
        lambda out, err: events_command(tmp_path / "nope", out, [], None, err=err),
        lambda out, err: flush_command(tmp_path / "nope", [], None, 1.0, out=out, err=err),
        lambda out, err: requeue_command(tmp_path / "nope", [], out=out, err=err),
    ]
    said = []
    for command in commands:
        out, err = io.StringIO(), io.StringIO()
        assert command(out, err) == 0
        assert err.getvalue() == ""
        said.append(out.getvalue())
    assert said == [f"no events recorded yet in {tmp_path / 'nope'}\n", "",
                    f"nothing pending: no events recorded yet in {tmp_path / 'nope'}\n",
                    f"nothing rejected: no events recorded yet in {tmp_path / 'nope'}\n"]
    assert not (tmp_path / "nope").exists()  # reading creates nothing


def test_an_unreadable_outbox_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "outbox.sqlite3").write_bytes(b"this is not a SQLite database" * 100)
    for command in (lambda err: stats_command(tmp_path, io.StringIO(), err=err),
                    lambda err: events_command(tmp_path, io.StringIO(), [], None, err=err)):
        err = io.StringIO()
        assert command(err) == 1
        message = err.getvalue()
        assert message.startswith("codex-rpc-analytics: error: ") and message.count("\n") == 1


def test_flush_reports_what_remains(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    target = tmp_path / "out.jsonl"
    spec = parse_sink_spec(f"jsonl:{target}")
    outbox = Outbox.open(state_dir)
    outbox.commit([(*make_event(1), 1.0)], [spec.key, "codex"])
    outbox.close()
    out = io.StringIO()
    assert flush_command(state_dir, [spec], None, 5.0, out=out) == 0
    assert f"{spec.key}: delivered 1, pending 0, rejected 0" in out.getvalue()
    assert target.read_bytes() == make_event(1)[1] + b"\n"
    # The codex sink has no ChatGPT login here: it stays pending, and flush says so.
    codex_home = tmp_path / "empty-codex-home"
    out = io.StringIO()
    assert flush_command(state_dir, [], codex_home, 1.0, out=out) == 1
    text = out.getvalue()
    assert "codex: delivered 0, pending 1, rejected 0 (disabled:" in text
    assert text.rstrip().endswith("1 events still pending")
