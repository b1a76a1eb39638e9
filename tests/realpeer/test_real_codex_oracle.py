"""The real codex 0.169.0 as an oracle: what it posts for scripted and SDK-driven sessions.

No proxy here: these tests pin down the oracle itself (shared/docs/real-codex-peer.md §4), so
that differential tests through `codex-rpc-analytics proxy` can lean on it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import TRANSCRIPTS

from .session import (
    AUTO_REVIEW_POSTS,
    CODEX_ANALYTICS_PATH,
    THREAD_START_ONLY,
    SessionResult,
    SessionSpec,
    run_session,
)

pytestmark = pytest.mark.realpeer

# real-codex-peer.md §4: (event_type, initialization_mode, is_first_turn) in posting order.
FULL_FLOW_EVENTS = [
    ("codex_thread_initialized", "new", None),
    ("codex_turn_event", "new", True),
    ("codex_turn_event", "new", False),
    ("codex_thread_initialized", "resumed", None),
    ("codex_thread_initialized", "forked", None),
    ("codex_turn_event", "forked", False),
    ("codex_thread_initialized", "new", None),
]
# analytics-events.md §10.1: header order as received.
HEADER_ORDER = [
    "authorization",
    "chatgpt-account-id",
    "content-type",
    "originator",
    "user-agent",
    "accept",
    "host",
    "content-length",
]
ID_KEYS = {"thread_id", "session_id", "turn_id", "root_turn_id", "forked_from_thread_id"}


def shape(events: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    return [
        (
            ev["event_type"],
            ev["event_params"].get("initialization_mode"),
            ev["event_params"].get("is_first_turn"),
        )
        for ev in events
    ]


def key_paths(value: Any, prefix: str = "") -> list[str]:
    """Every key of a JSON document in document order, as dotted paths."""
    if not isinstance(value, dict):
        return []
    paths = []
    for key, child in value.items():
        paths.append(prefix + key)
        paths.extend(key_paths(child, prefix + key + "."))
    return paths


def normalise(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ids → their order of first appearance; times and durations → their type."""
    ids: dict[str, str] = {}

    def walk(key: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(k, v) for k, v in value.items()}
        if key in ID_KEYS and isinstance(value, str):
            return ids.setdefault(value, f"id{len(ids)}")
        if (key.endswith("_ms") or key.endswith("_at")) and isinstance(value, int):
            return "<int>"
        return value

    return [walk("", ev) for ev in events]


def assert_clean_session(result: SessionResult) -> None:
    assert result.error is None, result.error
    assert result.peer_exit_code == 0
    # codex may leave helpers behind (API-key auth starts `git ls-remote` for plugin sync and
    # exits without waiting for it); only a leftover codex would mean an unclean shutdown.
    # A process caught while exiting has an empty argv (its /proc cmdline is gone): not codex.
    leftover_codex = [p for p in result.leftover_processes
                      if p["argv"] and Path(p["argv"][0]).name == "codex"]
    assert leftover_codex == []
    assert result.raw["invisible_thread_events"] == []
    assert [p["path"] for p in result.analytics] == [CODEX_ANALYTICS_PATH] * len(result.analytics)


def assert_headers(result: SessionResult, originator: str) -> None:
    for post in result.codex_posts():
        headers = dict(post["headers"])
        assert [name for name, _ in post["headers"]] == HEADER_ORDER
        assert post["checks"] == {
            "authorization_bearer": True,
            "authorization_is_access_token": True,
            "account_id_matches": True,
        }
        assert headers["content-type"] == "application/json"
        assert headers["originator"] == originator
        assert headers["user-agent"].startswith(f"{originator}/0.169.0 (")
        assert "***" in headers["authorization"] and "***" in headers["chatgpt-account-id"]
        assert len(json.loads(post["body"])["events"]) == 1  # one event per POST in 0.169.0


def fixture_events() -> list[dict[str, Any]]:
    path = TRANSCRIPTS / "fakeauth_full_flow.events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_scripted_full_flow_posts_the_seven_events(
    netns_ok: None, codex_binary: Path, tmp_path: Path
) -> None:
    result = run_session(
        SessionSpec(command=[str(codex_binary), "app-server"], workdir=str(tmp_path / "s"))
    )
    assert_clean_session(result)
    assert result.raw["events_reached"] is True
    assert len(result.codex_posts()) == 7
    assert_headers(result, originator="probe")

    events = result.codex_events()
    assert shape(events) == FULL_FLOW_EVENTS
    expected = fixture_events()
    # Same key order as the recorded 0.169.0 events, nested objects included …
    for ours, theirs in zip(events, expected, strict=True):
        assert key_paths(ours) == key_paths(theirs), ours["event_type"]
    # … and the same values, once ids, times and durations are normalised.
    assert normalise(events) == normalise(expected)

    # The ids are the ones the session saw on stdio.
    steps = result.raw["steps"]
    main, fork, second = steps[0]["thread_id"], steps[4]["thread_id"], steps[6]["thread_id"]
    thread_ids = [ev["event_params"]["thread_id"] for ev in events]
    assert thread_ids == [main, main, main, main, fork, fork, second]
    turn_ids = [s["turn_id"] for s in steps if s["op"] == "turn"]
    assert [ev["event_params"]["turn_id"] for ev in events if "turn_id" in ev["event_params"]] == (
        turn_ids
    )
    assert events[4]["event_params"]["forked_from_thread_id"] == main
    # created_at is the thread's createdAt as the start/resume/fork result reports it. For the
    # resumed thread that is the rollout's own timestamp, which can be a second *earlier* than
    # what thread/start reported when the start straddled a second boundary (seen under load).
    thread_steps = [s for s in steps if s["op"] != "turn"]
    initialized = [ev for ev in events if ev["event_type"] == "codex_thread_initialized"]
    assert [ev["event_params"]["created_at"] for ev in initialized] == [
        s["created_at"] for s in thread_steps
    ]
    assert 0 <= thread_steps[0]["created_at"] - thread_steps[1]["created_at"] <= 1
    assert all(s.get("status") == "completed" for s in steps if s["op"] == "turn")

    # The transcript has the fixtures' row format and every protocol line is JSON.
    rows = result.transcript
    assert rows[0]["dir"] == "meta" and json.loads(rows[0]["raw"])["argv"][-1] == "app-server"
    assert {row["dir"] for row in rows} <= {"meta", "c2s", "s2c", "stderr"}
    for row in rows:
        assert set(row) == {"t", "dir", "raw"}
        if row["dir"] in ("c2s", "s2c"):
            json.loads(row["raw"])
    methods = [json.loads(r["raw"]).get("method") for r in rows if r["dir"] == "c2s"]
    assert methods == [
        "initialize",
        "initialized",
        "thread/start",
        "turn/start",
        "turn/start",
        "thread/resume",
        "thread/fork",
        "turn/start",
        "thread/start",
    ]


@pytest.mark.parametrize(
    ("auth", "analytics_enabled", "posts"),
    [
        ("chatgpt", None, 1),  # g1: no [analytics] section still sends
        ("chatgpt", False, 0),  # g3
        ("apikey", True, 0),  # g4
        ("none", True, 0),  # g5
    ],
)
def test_gating(
    netns_ok: None,
    codex_binary: Path,
    tmp_path: Path,
    auth: str,
    analytics_enabled: bool | None,
    posts: int,
) -> None:
    spec = SessionSpec(
        command=[str(codex_binary), "app-server"],
        steps=list(THREAD_START_ONLY),
        auth=auth,  # type: ignore[arg-type]
        analytics_enabled=analytics_enabled,
        workdir=str(tmp_path / "s"),
    )
    result = run_session(spec)
    # codex has exited (and flushed its queue on SIGTERM): the count is final.
    assert_clean_session(result)
    assert len(result.codex_posts()) == posts
    if posts:
        assert shape(result.codex_events()) == [FULL_FLOW_EVENTS[0]]


SDK_CASES: dict[str, dict[str, Any]] = {
    "openai-codex": {
        "originator": "codex_python_sdk",
        "client_version": "0.163.0",
        "experimental_api_enabled": True,
        "methods": [
            "initialize",
            "initialized",
            "thread/start",
            "turn/start",
            "thread/resume",
            "thread/fork",
            "turn/start",
            "thread/start",
        ],
        "shape": [
            ("codex_thread_initialized", "new", None),
            ("codex_turn_event", "new", True),
            ("codex_thread_initialized", "resumed", None),
            ("codex_thread_initialized", "forked", None),
            ("codex_turn_event", "forked", False),
            ("codex_thread_initialized", "new", None),
        ],
    },
    "codex-app-server-sdk": {
        "originator": "codex-app-server-sdk",
        "client_version": "0.4.1",
        "experimental_api_enabled": False,
        # chat_once sends thread/resume before each turn/start (refused before the first turn).
        "methods": [
            "initialize",
            "initialized",
            "thread/start",
            "thread/resume",
            "turn/start",
            "thread/resume",
            "thread/fork",
            "thread/resume",
            "turn/start",
            "thread/start",
        ],
        # chat_once resumes the fork before its turn: one more `resumed`, and the turn event
        # reports the fork as resumed.
        "shape": [
            ("codex_thread_initialized", "new", None),
            ("codex_turn_event", "new", True),
            ("codex_thread_initialized", "resumed", None),
            ("codex_thread_initialized", "forked", None),
            ("codex_thread_initialized", "resumed", None),
            ("codex_turn_event", "resumed", False),
            ("codex_thread_initialized", "new", None),
        ],
    },
}


@pytest.mark.parametrize("record_wire", [False, True], ids=["direct", "wire_tap"])
@pytest.mark.parametrize("client", sorted(SDK_CASES))
def test_sdk_session_against_codex(
    netns_ok: None,
    codex_binary: Path,
    sdk_python: Path,
    tmp_path: Path,
    client: str,
    record_wire: bool,
) -> None:
    case = SDK_CASES[client]
    spec = SessionSpec(
        command=[str(codex_binary), "app-server"],
        client=client,  # type: ignore[arg-type]
        sdk_python=str(sdk_python),
        record_wire=record_wire,
        workdir=str(tmp_path / "s"),
    )
    result = run_session(spec)
    assert_clean_session(result)
    assert result.raw["sdk_exit_code"] == 0
    assert_headers(result, originator=case["originator"])

    events = result.codex_events()
    assert shape(events) == case["shape"]
    for event in events:
        client_info = event["event_params"]["app_server_client"]
        assert client_info == {
            "product_client_id": case["originator"],
            "client_name": case["originator"],
            "client_version": case["client_version"],
            "rpc_transport": "stdio",
            "experimental_api_enabled": case["experimental_api_enabled"],
        }
    main, fork, ephemeral = result.sdk["thread_ids"]
    assert events[0]["event_params"]["thread_id"] == main
    assert events[3]["event_params"]["forked_from_thread_id"] == main
    assert events[-2]["event_params"]["thread_id"] == fork
    assert events[-1]["event_params"]["thread_id"] == ephemeral
    assert events[-1]["event_params"]["ephemeral"] is True
    assert not any(ev["event_params"]["ephemeral"] for ev in events[:-1])

    turns = [s for s in result.sdk["steps"] if s["step"] == "turn"]
    assert [t["text"] for t in turns] == ["ok from fake model"] * 2
    assert result.sdk["initialize"]["userAgent"].startswith(f"{case['originator']}/0.169.0 ")
    assert result.sdk["events_reached"] is True

    if record_wire:
        sent = [json.loads(r["raw"]) for r in result.transcript if r["dir"] == "c2s"]
        assert [m.get("method") for m in sent] == case["methods"]
        received = [json.loads(r["raw"]) for r in result.transcript if r["dir"] == "s2c"]
        assert sum(m.get("method") == "turn/completed" for m in received) == 2
    else:
        assert result.transcript == []


def test_official_sdk_auto_review_guardian_threads_are_listed_as_invisible(
    netns_ok: None, codex_binary: Path, sdk_python: Path, tmp_path: Path
) -> None:
    """The SDK's default approval mode: codex starts a guardian reviewer thread for every
    thread/start and thread/fork (the ephemeral thread too, though it never runs a turn); its
    `codex_thread_initialized` names a thread that never appears on stdio, and the result lists
    it apart."""
    spec = SessionSpec(
        command=[str(codex_binary), "app-server"],
        client="openai-codex",
        sdk_python=str(sdk_python),
        sdk_options={"approval_mode": "auto_review"},
        # The 6 visible events and 3 guardians. The ephemeral thread's guardian is posted some
        # 50-100 ms after the thread's own event, i.e. after the session's last visible event:
        # a session closed at 8 posts loses it or not depending on how fast it closes.
        expected_posts=AUTO_REVIEW_POSTS,
        workdir=str(tmp_path / "s"),
    )
    result = run_session(spec)
    assert result.error is None, result.error
    invisible = result.raw["invisible_thread_events"]
    assert [(e["event_type"], e["subagent_source"]) for e in invisible] == [
        ("codex_thread_initialized", "guardian"),
    ] * 3
    visible = [
        ev
        for ev in result.codex_events()
        if ev["event_params"]["thread_id"] in result.sdk["thread_ids"]
    ]
    assert shape(visible) == SDK_CASES["openai-codex"]["shape"]
    parents = [
        ev["event_params"]["parent_thread_id"]
        for ev in result.codex_events()
        if ev["event_params"].get("subagent_source") == "guardian"
    ]
    # one per thread the SDK started or forked (codex posts each soon after its parent's own
    # event; the order of posts of different threads is not what this test is about)
    assert sorted(parents) == sorted(result.sdk["thread_ids"])


def test_scripted_session_through_a_wrapper_command(
    netns_ok: None, codex_binary: Path, tmp_path: Path
) -> None:
    """The shape of a proxy run: a wrapper in front of codex, its output under {workdir}.

    wire_tap.py stands in for `codex-rpc-analytics proxy --sink jsonl:{workdir}/… -- codex …`.
    """
    wrapper = [sys.executable, str(Path(__file__).with_name("wire_tap.py"))]
    spec = SessionSpec(
        command=[*wrapper, "{workdir}/tap.jsonl", "--", str(codex_binary), "app-server"],
        workdir=str(tmp_path / "s"),
    )
    result = run_session(spec)
    assert_clean_session(result)
    assert shape(result.codex_events()) == FULL_FLOW_EVENTS
    tap_rows = [
        json.loads(line) for line in (result.workdir / "tap.jsonl").read_text().splitlines()
    ]
    for direction in ("c2s", "s2c"):
        assert [r["raw"] for r in tap_rows if r["dir"] == direction] == [
            r["raw"] for r in result.transcript if r["dir"] == direction
        ]
    assert json.loads(tap_rows[-1]["raw"]) == {"exit_code": 0}


def test_missing_command_is_reported_not_raised(netns_ok: None, tmp_path: Path) -> None:
    result = run_session(
        SessionSpec(command=["/nonexistent/codex", "app-server"], workdir=str(tmp_path / "s"))
    )
    assert result.error is not None and "FileNotFoundError" in result.error
    assert result.analytics == []
