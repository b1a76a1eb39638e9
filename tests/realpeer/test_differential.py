"""The proxy against the real thing: codex 0.169.0 and the real Python SDKs, checked against
the analytics codex itself posted for the very same session (docs/real-codex-peer.md).

Every session runs inside its own loopback-only network namespace (tests/realpeer/netns.py):
the fake backend, the proxy, codex and the SDK are one process tree under `unshare -n`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .session import (
    AUTO_REVIEW_POSTS,
    EPHEMERAL_THREAD,
    FULL_FLOW,
    SessionResult,
    SessionSpec,
    run_session,
)

pytestmark = pytest.mark.realpeer

PROXY = Path(sys.executable).with_name("codex-rpc-analytics")

# codex_turn_event keys no JSON-RPC message carries (core's turn profile, measured inside
# codex): everything else must be equal, key order included.
UNOBSERVABLE_TURN_KEYS = frozenset({"before_first_sampling_ms", "sampling_ms",
                                    "after_last_sampling_ms", "sampling_request_count",
                                    "between_sampling_overhead_ms", "sampling_retry_count",
                                    "compaction_ms", "tool_blocking_ms", "tools_change_count"})


def proxied(codex_binary: Path) -> list[str]:
    return [str(PROXY), "proxy", "--sink", "jsonl:{workdir}/proxy-events.jsonl",
            "--state-dir", "{workdir}/state", "--record", "{workdir}/session.rpc.jsonl",
            "--", str(codex_binary), "app-server"]


def proxy_lines(result: SessionResult) -> list[bytes]:
    path = result.workdir / "proxy-events.jsonl"
    return path.read_bytes().splitlines() if path.exists() else []


def visible_codex_events(result: SessionResult) -> list[dict[str, Any]]:
    """codex's own events, less those of threads that never appeared on stdio (guardian
    reviewers): no wire message announces those, so a proxy cannot and must not post them."""
    visible = set(result.raw["visible_thread_ids"])
    return [e for e in result.codex_events() if e["event_params"]["thread_id"] in visible]


def assert_same_events(result: SessionResult, *, invisible: int = 0) -> None:
    """The proxy's events equal codex's own for the threads on the wire (`invisible`: how many
    events of other threads codex posted): thread events identical, turn events equal on every
    observable key; same order."""
    assert result.error is None, result.error
    assert len(result.raw["invisible_thread_events"]) == invisible
    codex = visible_codex_events(result)
    ours = [json.loads(line) for line in proxy_lines(result)]
    assert [e["event_type"] for e in ours] == [e["event_type"] for e in codex]
    for mine, theirs in zip(ours, codex, strict=True):
        assert list(mine["event_params"]) == list(theirs["event_params"])
        if mine["event_type"] == "codex_turn_event":
            keys = [k for k in theirs["event_params"] if k not in UNOBSERVABLE_TURN_KEYS]
        else:
            keys = list(theirs["event_params"])
        differing = {k: (mine["event_params"][k], theirs["event_params"][k])
                     for k in keys if mine["event_params"][k] != theirs["event_params"][k]}
        assert differing == {}, (mine["event_type"], differing)


def assert_thread_events_byte_identical(result: SessionResult) -> None:
    codex_lines = [json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode()
                   for e in visible_codex_events(result)
                   if e["event_type"] == "codex_thread_initialized"]
    ours = [line for line in proxy_lines(result)
            if json.loads(line)["event_type"] == "codex_thread_initialized"]
    assert ours == codex_lines


def assert_recording_replays_to_the_same_events(result: SessionResult) -> None:
    recording = result.workdir / "session.rpc.jsonl"
    replayed = subprocess.run([str(PROXY), "replay", str(recording)], capture_output=True,
                              check=True, timeout=60)
    assert replayed.stdout.splitlines() == proxy_lines(result)


SCRIPTED_CASES: dict[str, dict[str, Any]] = {
    "full-flow-and-ephemeral": {"steps": [*FULL_FLOW, EPHEMERAL_THREAD]},
    "no-capabilities": {"experimental_api": False},
    "second-client-name": {"client_name": "codex_vscode"},
}


@pytest.mark.parametrize("case", sorted(SCRIPTED_CASES))
def test_scripted_session_through_the_proxy_matches_codex(
    netns_ok: None, codex_binary: Path, tmp_path: Path, case: str,
) -> None:
    spec = SessionSpec(command=proxied(codex_binary), workdir=str(tmp_path / "s"),
                       **SCRIPTED_CASES[case])
    result = run_session(spec)
    assert_same_events(result)
    assert_thread_events_byte_identical(result)
    assert_recording_replays_to_the_same_events(result)
    assert result.peer_exit_code == 0
    assert result.leftover_processes == []
    events = [json.loads(line) for line in proxy_lines(result)]
    client = events[0]["event_params"]["app_server_client"]
    if case == "no-capabilities":
        assert client["experimental_api_enabled"] is None
    if case == "second-client-name":
        assert client["product_client_id"] == client["client_name"] == "codex_vscode"
    if case == "full-flow-and-ephemeral":
        assert events[-1]["event_params"]["ephemeral"] is True


def sdk_outcome(result: SessionResult) -> dict[str, Any]:
    """What an SDK user observes of a session, minus ids and timings."""
    sdk = result.sdk
    return {
        "error": sdk.get("error"),
        "steps": [(step["step"], step.get("status"), step.get("text"))
                  for step in sdk.get("steps", [])],
        "threads": len(sdk.get("thread_ids", [])),
        "events_reached": sdk.get("events_reached"),
    }


@pytest.mark.parametrize("client", ["openai-codex", "codex-app-server-sdk"])
def test_sdk_session_through_the_proxy_matches_codex_and_the_direct_session(
    netns_ok: None, codex_binary: Path, sdk_python: Path, tmp_path: Path, client: str,
) -> None:
    common = {"client": client, "sdk_python": str(sdk_python)}
    direct = run_session(SessionSpec(command=[str(codex_binary), "app-server"],
                                     workdir=str(tmp_path / "direct"), **common))  # type: ignore[arg-type]
    through = run_session(SessionSpec(command=proxied(codex_binary),
                                      workdir=str(tmp_path / "proxied"), **common))  # type: ignore[arg-type]
    assert_same_events(through)
    assert_thread_events_byte_identical(through)
    assert_recording_replays_to_the_same_events(through)
    # The SDK cannot tell the proxy is there: same results, and it shuts down inside its
    # own SIGTERM-then-SIGKILL (2 s) budget, with nothing left running: a proxy still running
    # at the budget's end would be SIGKILLed by the SDK, an exit status codex's never is.
    assert sdk_outcome(through) == sdk_outcome(direct)
    assert through.sdk["error"] is None
    assert direct.peer_exit_code != -signal.SIGKILL
    assert through.peer_exit_code == direct.peer_exit_code
    assert through.leftover_processes == []


def test_auto_review_session_through_the_proxy_matches_codex_on_the_visible_threads(
    netns_ok: None, codex_binary: Path, sdk_python: Path, tmp_path: Path,
) -> None:
    """The official SDK's default approval mode: codex posts a guardian reviewer thread's
    `codex_thread_initialized` for each thread/start and thread/fork. The proxy posts exactly
    codex's events for the threads on the wire, and none for the guardians it cannot see."""
    spec = SessionSpec(command=proxied(codex_binary), client="openai-codex",
                       sdk_python=str(sdk_python), sdk_options={"approval_mode": "auto_review"},
                       expected_posts=AUTO_REVIEW_POSTS, workdir=str(tmp_path / "s"))
    result = run_session(spec)
    threads = result.sdk["thread_ids"]
    assert_same_events(result, invisible=len(threads))
    assert_thread_events_byte_identical(result)
    assert_recording_replays_to_the_same_events(result)
    guardians = [e for e in result.codex_events()
                 if e["event_params"]["thread_id"] not in threads]
    assert sorted(e["event_params"]["parent_thread_id"] for e in guardians) == sorted(threads)
    assert {e["event_params"]["subagent_source"] for e in guardians} == {"guardian"}
    assert result.peer_exit_code == 0
    assert result.leftover_processes == []
