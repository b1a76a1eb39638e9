"""`codex-rpc-analytics replay` as users run it: a real subprocess, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ALL_TRANSCRIPTS, recorded_events, transcript


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "codex_rpc_analytics", *args],
                          capture_output=True, timeout=60, check=False)


@pytest.mark.parametrize("name", ["fakeauth_full_flow", "gating_g1_no_analytics_section"])
def test_replay_prints_codex_thread_initialized_byte_for_byte(name: str) -> None:
    result = run_cli("replay", str(transcript(name)))
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines()
               if json.loads(line)["event_type"] == "codex_thread_initialized"]
    assert printed == recorded_events(name, "codex_thread_initialized")
    assert result.stderr == b""


def test_all_transcripts_replay_without_error() -> None:
    result = run_cli("replay", *(str(transcript(name)) for name in ALL_TRANSCRIPTS))
    assert result.returncode == 0 and result.stderr == b""
    assert all(json.loads(line)["event_type"] for line in result.stdout.splitlines())


def test_transport_flag_labels_the_events() -> None:
    result = run_cli("replay", "--transport", "in_process", str(transcript("noauth_threads")))
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events and all(event["event_params"]["app_server_client"]["rpc_transport"]
                          == "in_process" for event in events)


def test_missing_file_is_a_one_line_error_exit_1(tmp_path: Path) -> None:
    result = run_cli("replay", str(tmp_path / "nope.rpc.jsonl"))
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr.decode().count("\n") == 1
    assert "transcript not found" in result.stderr.decode()


@pytest.mark.parametrize("args", [["replay", "--transport", "carrier-pigeon", "x"],
                                  ["replay"], ["no-such-command"]])
def test_bad_flags_are_one_line_errors_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1, result.stderr


def test_corrupt_rows_warn_with_file_and_line_and_the_rest_replays(tmp_path: Path) -> None:
    rows = transcript("gating_g1_no_analytics_section").read_text().splitlines()
    rows.insert(3, '{"t": 0.1, "dir": "c2s"')  # truncated JSON
    rows.insert(5, '{"t": 0.2, "dir": "sideways", "raw": "{}"}')  # unknown direction
    rows.insert(7, '{"t": 0.3, "dir": "c2s", "raw": 5}')  # no line bytes
    damaged = tmp_path / "damaged.rpc.jsonl"
    damaged.write_text("\n".join(rows) + "\n")
    result = run_cli("replay", str(damaged))
    assert result.returncode == 0
    warnings = result.stderr.decode().splitlines()
    assert [w.split(": ")[2].rsplit(":", 1)[1] for w in warnings] == ["4", "6", "8"]
    assert all(str(damaged) in w for w in warnings)
    assert result.stdout.splitlines() == recorded_events("gating_g1_no_analytics_section")


def test_invalid_utf8_rows_recorded_as_base64_replay(tmp_path: Path) -> None:
    rows = transcript("gating_g1_no_analytics_section").read_text().splitlines()
    rows.insert(3, '{"t": 0.1, "dir": "s2c", "raw_b64": "/+4K"}')
    path = tmp_path / "b64.rpc.jsonl"
    path.write_text("\n".join(rows) + "\n")
    result = run_cli("replay", str(path))
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout.splitlines() == recorded_events("gating_g1_no_analytics_section")


def test_a_recordings_transport_is_used_unless_overridden(tmp_path: Path) -> None:
    rows = transcript("noauth_threads").read_text().splitlines()
    meta = {"t": 0.0, "dir": "meta", "raw": json.dumps({"transport": "in_process"})}
    path = tmp_path / "in-process.rpc.jsonl"
    path.write_text("\n".join([json.dumps(meta), *rows]) + "\n")

    def transports(*flags: str) -> set[str]:
        result = run_cli("replay", *flags, str(path))
        return {json.loads(line)["event_params"]["app_server_client"]["rpc_transport"]
                for line in result.stdout.splitlines()}

    assert transports() == {"in_process"}
    assert transports("--transport", "websocket") == {"websocket"}
