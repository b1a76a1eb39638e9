"""`codex_turn_event` and `codex_turn_steer_event` from the wire, and subagent threads.

Messages are built in the exact shapes codex 0.169.0 sends (tests/support.py reads the
recorded ones); only ids and values vary.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from codex_rpc_analytics.core import Analyzer, RuntimeInfo, encode_event
from tests.support import recorded_events, wire_lines

HOST = RuntimeInfo("host", "linux", "1.0.0", "x86_64")

# Keys of codex_turn_event that no JSON-RPC message carries (core's turn profile): codex
# measured them inside the server. We emit 0 for them; every other key must be equal.
UNOBSERVABLE_TURN_KEYS = {
    "before_first_sampling_ms": "time before the first model request, inside core",
    "sampling_ms": "time spent sampling, inside core",
    "after_last_sampling_ms": "time after the last model request, inside core",
    "sampling_request_count": "model requests made, inside core (retries are invisible)",
}


def replay_events(name: str) -> list[dict[str, Any]]:
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio", 0)
    events = []
    for direction, line in wire_lines(name):
        events += analyzer.feed_line(connection, direction, line, 0.0)  # type: ignore[arg-type]
    events += analyzer.finish(0.0)
    return [json.loads(encode_event(event)) for event in events]


def test_fakeauth_turn_events_equal_codex_on_every_observable_key() -> None:
    ours = [e for e in replay_events("fakeauth_full_flow") if e["event_type"] == "codex_turn_event"]
    theirs = [json.loads(line) for line in
              recorded_events("fakeauth_full_flow", "codex_turn_event")]
    assert len(ours) == len(theirs) == 3
    for mine, codex in zip(ours, theirs, strict=True):
        assert list(mine["event_params"]) == list(codex["event_params"])  # wire order
        compared = [key for key in codex["event_params"] if key not in UNOBSERVABLE_TURN_KEYS]
        assert len(compared) == 73
        assert {k: mine["event_params"][k] for k in compared} == \
            {k: codex["event_params"][k] for k in compared}


def test_event_order_matches_codex() -> None:
    ours = [e["event_type"] for e in replay_events("fakeauth_full_flow")]
    theirs = [json.loads(line)["event_type"] for line in recorded_events("fakeauth_full_flow")]
    assert ours == theirs


# --- a scripted session in codex's shapes --------------------------------------------------

THREAD = "01a21287-1c84-7ee1-a8f6-7acf558e5cbc"


class Session:
    """Drives one analyzer connection with codex-shaped messages."""

    def __init__(self, init_params: str | None = None) -> None:
        self.analyzer = Analyzer(HOST)
        self.connection = self.analyzer.open("stdio", 0)
        self.events: list[dict[str, Any]] = []
        self.next_id = 100
        self.send("c2s", '{"id":0,"method":"initialize","params":'
                  + (init_params or '{"clientInfo":{"name":"probe","title":"Probe",'
                     '"version":"0.0.1"},"capabilities":{"experimentalApi":true}}') + "}")
        self.send("s2c", '{"id":0,"result":{"userAgent":"probe/0.169.0 (Debian 12.0.0; x86_64) '
                  'xterm (probe; 0.0.1)","codexHome":"/home/dev/.codex","platformFamily":"unix",'
                  '"platformOs":"linux"}}')

    def send(self, direction: str, line: str, now: float = 1795607174.0) -> None:
        for event in self.analyzer.feed_line(self.connection, direction,  # type: ignore[arg-type]
                                             line.encode(), now):
            self.events.append(json.loads(encode_event(event)))

    def request(self, method: str, params: dict[str, Any], now: float = 1795607174.0) -> int:
        self.next_id += 1
        self.send("c2s", json.dumps({"id": self.next_id, "method": method, "params": params},
                                    separators=(",", ":")), now)
        return self.next_id

    def result(self, request_id: int, result: dict[str, Any]) -> None:
        self.send("s2c", json.dumps({"id": request_id, "result": result}))

    def error(self, request_id: int, error: dict[str, Any]) -> None:
        self.send("s2c", json.dumps({"error": error, "id": request_id}))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send("s2c", json.dumps({"method": method, "params": params,
                                     "emittedAtMs": 1795607174389}))

    def start_thread(self, thread_id: str = THREAD, *, sandbox: dict[str, Any] | None = None,
                     source: Any = "vscode", parent: str | None = None) -> None:
        request = self.request("thread/start", {"cwd": "/home/dev/project"})
        self.result(request, {
            "thread": {"id": thread_id, "sessionId": thread_id, "forkedFromId": None,
                       "parentThreadId": parent, "preview": "", "ephemeral": False,
                       "modelProvider": "probe", "model": "gpt-6.1-sol", "createdAt": 1795607174,
                       "source": source, "threadSource": None, "turns": []},
            "model": "gpt-6.1-sol", "modelProvider": "probe", "serviceTier": None,
            "approvalPolicy": "on-request", "approvalsReviewer": "user",
            "sandbox": sandbox or {"type": "readOnly", "networkAccess": False},
            "reasoningEffort": None})

    def start_turn(self, turn_id: str, params: dict[str, Any] | None = None,
                   thread_id: str = THREAD) -> None:
        body = {"threadId": thread_id, "input": [{"type": "text", "text": "say ok"}],
                **(params or {})}
        request = self.request("turn/start", body)
        turn = {"id": turn_id, "rootTurnId": turn_id, "items": [], "itemsView": "notLoaded",
                "status": "inProgress", "error": None, "startedAt": None, "completedAt": None,
                "durationMs": None}
        self.result(request, {"turn": turn})
        self.notify("turn/started", {"threadId": thread_id,
                                     "turn": {**turn, "startedAt": 1795607174}})

    def item(self, turn_id: str, item: dict[str, Any], thread_id: str = THREAD) -> None:
        self.notify("item/completed", {"item": item, "threadId": thread_id, "turnId": turn_id,
                                       "contentTokenCount": None, "completedAtMs": 1})

    def usage(self, turn_id: str, total: int, last: int, thread_id: str = THREAD) -> None:
        def breakdown(n: int) -> dict[str, int]:
            return {"totalTokens": n, "inputTokens": n - n // 3, "cachedInputTokens": 0,
                    "cacheWriteInputTokens": 0, "outputTokens": n // 3,
                    "reasoningOutputTokens": 0}
        self.notify("thread/tokenUsage/updated", {
            "threadId": thread_id, "turnId": turn_id,
            "tokenUsage": {"total": breakdown(total), "last": breakdown(last),
                           "modelContextWindow": 258400}})

    def complete(self, turn_id: str, status: str = "completed", error: Any = None,
                 thread_id: str = THREAD) -> None:
        self.notify("turn/completed", {"threadId": thread_id, "turn": {
            "id": turn_id, "rootTurnId": turn_id, "items": [], "itemsView": "summary",
            "status": status, "error": error, "startedAt": 1795607174,
            "completedAt": 1795607175, "durationMs": 113}})

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e["event_params"] for e in self.events if e["event_type"] == event_type]


def test_failed_turn_reports_codex_error_info() -> None:
    session = Session()
    session.start_thread()
    session.start_turn("turn-1")
    info = {"httpConnectionFailed": {"httpStatusCode": 502}}
    session.complete("turn-1", "failed", {"message": "boom", "codexErrorInfo": info,
                                          "additionalDetails": None, "misalignment": None})
    (turn,) = session.of_type("codex_turn_event")
    assert turn["status"] == "failed" and turn["turn_error"] == info
    # codex 0.169.0 reports an HTTP status it did not expect as httpConnectionFailed.
    assert turn["codex_error_kind"] == "unexpected_status"
    assert turn["codex_error_http_status_code"] == 502
    # No usage reported for a failed turn: codex accounts zeros, not null.
    assert (turn["input_tokens"], turn["total_tokens"]) == (0, 0)


# (codexErrorInfo, message, kind, status) as the real codex 0.169.0 reported them in the
# scenario matrix (tests/fixtures/transcripts/matrix_failures.*), plus ambiguous cases.
@pytest.mark.parametrize(("info", "message", "kind", "status"), [
    ("usageLimitExceeded", "You've hit your usage limit.", "usage_limit_reached", None),
    ("usageLimitExceeded", "Quota exceeded. Check your plan and billing details.",
     "quota_exceeded", None),
    ("usageLimitExceeded", "To use Codex with your ChatGPT plan, upgrade to Plus: https://x",
     "usage_not_included", None),
    ("contextWindowExceeded", "x", "context_window_exceeded", None),
    ("modelNotFound", "The model `m` does not exist.", "model_not_found", 404),
    ("other", '{"error": {"message": "bad", "type": "invalid_request_error"}}',
     "invalid_request", None),
    ("other", "stream disconnected before completion: closed", "stream", None),
    ("other", "Invalid prompt: flagged.", None, None),  # the API's own text: ambiguous
    ("badRequest", "no thread with id: t", "thread_not_found", None),
    ("badRequest", "x", None, None),
    ({"httpConnectionFailed": {"httpStatusCode": 403}}, "x", "unexpected_status", 403),
    ({"httpConnectionFailed": {"httpStatusCode": None}}, "x", "connection_failed", None),
    ({"responseTooManyFailedAttempts": {"httpStatusCode": 429}}, "x", "retry_limit", 429),
    ("somethingNew", "x", None, None),
])
def test_error_kind_mapping(info: Any, message: str, kind: str | None,
                            status: int | None) -> None:
    session = Session()
    session.start_thread()
    session.start_turn("t")
    session.complete("t", "failed", {"message": message, "codexErrorInfo": info})
    (turn,) = session.of_type("codex_turn_event")
    assert (turn["turn_error"], turn["codex_error_kind"],
            turn["codex_error_http_status_code"]) == (info, kind, status)


def test_interrupted_turn_records_the_earliest_successful_interrupt() -> None:
    session = Session()
    session.start_thread()
    session.start_turn("turn-1")
    failed = session.request("turn/interrupt", {"threadId": THREAD, "turnId": "turn-1"},
                             now=1795607170.0)
    session.error(failed, {"code": -32600, "message": "no"})
    first = session.request("turn/interrupt", {"threadId": THREAD, "turnId": "turn-1"},
                            now=1795607174.25)
    second = session.request("turn/interrupt", {"threadId": THREAD, "turnId": "turn-1"},
                             now=1795607174.5)
    session.result(second, {})
    session.result(first, {})
    session.complete("turn-1", "interrupted")
    (turn,) = session.of_type("codex_turn_event")
    assert turn["status"] == "interrupted"
    assert turn["explicit_client_interrupt_requested_at_ms"] == 1795607174250
    assert turn["input_tokens"] is None and turn["total_tokens"] is None  # no sampling


def test_tool_items_of_each_type_are_counted() -> None:
    session = Session()
    session.start_thread()
    session.start_turn("turn-1")
    for item in [
        {"type": "commandExecution", "id": "c1"}, {"type": "commandExecution", "id": "c2"},
        {"type": "fileChange", "id": "f1"}, {"type": "mcpToolCall", "id": "m1"},
        {"type": "dynamicToolCall", "id": "d1"}, {"type": "webSearch", "id": "w1"},
        {"type": "imageGeneration", "id": "i1"},
        {"type": "collabAgentToolCall", "id": "s1"},
        {"type": "collabAgentToolCall", "id": "s1"},  # the same item again: counted once
        {"type": "subAgentActivity", "id": "s2", "kind": "started"},
        {"type": "subAgentActivity", "id": "s3", "kind": "completed"},  # not a tool call
        {"type": "agentMessage", "id": "a1"}, {"type": "reasoning", "id": "r1"},
        {"type": "userMessage", "id": "u1"}, {"type": "contextCompaction", "id": "x1"},
    ]:
        session.item("turn-1", item)
    session.item("someone-elses-turn", {"type": "fileChange", "id": "f9"})
    session.complete("turn-1")
    (turn,) = session.of_type("codex_turn_event")
    counts = {key: turn[key] for key in (
        "total_tool_call_count", "shell_command_count", "file_change_count",
        "mcp_tool_call_count", "dynamic_tool_call_count", "subagent_tool_call_count",
        "web_search_count", "image_generation_count")}
    assert counts == {"total_tool_call_count": 9, "shell_command_count": 2,
                      "file_change_count": 1, "mcp_tool_call_count": 1,
                      "dynamic_tool_call_count": 1, "subagent_tool_call_count": 2,
                      "web_search_count": 1, "image_generation_count": 1}


def test_image_inputs_are_counted() -> None:
    session = Session()
    session.start_thread()
    session.start_turn("turn-1", {"input": [
        {"type": "text", "text": "look", "text_elements": []},
        {"type": "image", "url": "https://example.invalid/a.png"},
        {"type": "localImage", "path": "/home/dev/b.png"},
        {"type": "mention", "name": "x", "path": "app://x"}]})
    session.complete("turn-1")
    (turn,) = session.of_type("codex_turn_event")
    assert turn["num_input_images"] == 2


def test_overrides_apply_and_persist_for_later_turns() -> None:
    session = Session()
    session.start_thread()
    session.start_turn("turn-1", {
        "model": "gpt-x", "effort": "high", "summary": "concise", "serviceTier": "flex",
        "approvalPolicy": "never", "approvalsReviewer": "auto_review", "personality": "friendly",
        "sandboxPolicy": {"type": "workspaceWrite", "writableRoots": [], "networkAccess": True},
        # A collaboration mode's settings take precedence over model and effort (as codex
        # 0.169.0 applies them): here they repeat them.
        "collaborationMode": {"mode": "plan", "settings": {
            "model": "gpt-x", "reasoning_effort": "high", "developer_instructions": None}},
        "turnTrigger": "user"})
    session.complete("turn-1")
    session.start_turn("turn-2", {"serviceTierForTurn": "priority", "summary": "none"})
    session.complete("turn-2")
    session.start_turn("turn-3")
    session.complete("turn-3")
    first, second, third = session.of_type("codex_turn_event")
    assert {k: first[k] for k in ("model", "reasoning_effort", "reasoning_summary",
                                  "service_tier", "approval_policy", "approvals_reviewer",
                                  "personality", "sandbox_policy", "sandbox_network_access",
                                  "collaboration_mode", "turn_trigger", "is_first_turn")} == {
        "model": "gpt-x", "reasoning_effort": "high", "reasoning_summary": "concise",
        "service_tier": "flex", "approval_policy": "never", "approvals_reviewer": "auto_review",
        "personality": "friendly", "sandbox_policy": "workspace_write",
        "sandbox_network_access": True, "collaboration_mode": "plan", "turn_trigger": "user",
        "is_first_turn": True}
    # codex reports the wire's "priority" tier as "fast".
    assert second["service_tier"] == "fast" and second["reasoning_summary"] is None
    assert second["model"] == "gpt-x" and second["is_first_turn"] is False
    assert third["service_tier"] == "flex"  # serviceTierForTurn was for that turn only
    assert third["turn_trigger"] is None


def test_collaboration_mode_settings_replace_model_and_effort() -> None:
    session = Session()
    session.start_thread()
    session.start_turn("turn-1", {"effort": "high"})
    session.complete("turn-1")
    session.start_turn("turn-2", {"collaborationMode": {"mode": "plan", "settings": {
        "model": "gpt-y", "reasoning_effort": None, "developer_instructions": None}}})
    session.complete("turn-2")
    first, second = session.of_type("codex_turn_event")
    assert first["reasoning_effort"] == "high"
    assert (second["model"], second["reasoning_effort"]) == ("gpt-y", None)


@pytest.mark.parametrize(("tier", "reported"), [
    ("priority", "fast"), ("fast", "fast"), ("flex", "flex"), ("default", "default"),
    ("auto", "default"), ("scale", "default"), (None, "default"),
])
def test_service_tier_as_codex_reports_it(tier: str | None, reported: str) -> None:
    session = Session()
    session.start_thread()
    session.start_turn("t", {"serviceTier": tier})
    session.complete("t")
    (turn,) = session.of_type("codex_turn_event")
    assert turn["service_tier"] == reported


@pytest.mark.parametrize(("sandbox", "name", "network"), [
    ({"type": "dangerFullAccess"}, "full_access", True),
    ({"type": "externalSandbox", "networkAccess": "enabled"}, "external_sandbox", True),
    ({"type": "externalSandbox", "networkAccess": "restricted"}, "external_sandbox", False),
    ({"type": "readOnly"}, "read_only", False),
])
def test_sandbox_policies(sandbox: dict[str, Any], name: str, network: bool) -> None:
    session = Session()
    session.start_thread(sandbox=sandbox)
    session.start_turn("t")
    session.complete("t")
    (turn,) = session.of_type("codex_turn_event")
    assert (turn["sandbox_policy"], turn["sandbox_network_access"]) == (name, network)


def test_token_usage_is_the_turns_delta_and_replays_do_not_count() -> None:
    session = Session()
    session.start_thread()
    session.start_turn("turn-1")
    session.usage("turn-1", total=30, last=30)
    session.usage("turn-1", total=45, last=15)  # a second sampling request
    session.complete("turn-1")
    session.usage("turn-1", total=45, last=15)  # replayed by a resume: no running turn
    session.start_turn("turn-2")
    session.usage("turn-2", total=60, last=15)
    session.complete("turn-2")
    first, second = session.of_type("codex_turn_event")
    assert first["total_tokens"] == 45 and first["output_tokens"] == 15
    assert second["total_tokens"] == 15 and second["input_tokens"] == 10


STEER_REJECTIONS = [
    ({"code": -32600, "message": "no active turn to steer"}, "no_active_turn"),
    ({"code": -32600, "message": "expected active turn id `a` but found `b`"},
     "expected_turn_mismatch"),
    ({"code": -32600, "message": "cannot steer a review turn",
      "data": {"message": "x", "codexErrorInfo": {"activeTurnNotSteerable":
                                                  {"turnKind": "review"}}}},
     "non_steerable_review"),
    ({"code": -32600, "message": "cannot steer a compact turn",
      "data": {"message": "x", "codexErrorInfo": {"activeTurnNotSteerable":
                                                  {"turnKind": "compact"}}}},
     "non_steerable_compact"),
    ({"code": -32600, "message": "input must not be empty"}, "empty_input"),
    ({"code": -32602, "message": "Input exceeds the maximum length of 1048576 characters.",
      "data": {"input_error_code": "input_too_large", "actual_chars": 1048577,
               "max_chars": 1048576}}, "input_too_large"),
    ({"code": -32600, "message": "active turn uses a different output schema"}, None),
    ({"code": -32603, "message": "failed to steer turn: boom"}, None),
]


def test_steers_accepted_and_each_kind_of_rejection() -> None:
    session = Session()
    session.start_thread()
    session.start_turn("turn-2")
    accepted = session.request("turn/steer", {
        "threadId": THREAD, "expectedTurnId": "turn-2",
        "input": [{"type": "text", "text": "more"}, {"type": "localImage", "path": "/a.png"}]},
        now=1775600000.9)
    session.result(accepted, {"turnId": "turn-2"})
    for error, _ in STEER_REJECTIONS:
        rejected = session.request("turn/steer", {"threadId": THREAD, "expectedTurnId": "turn-2",
                                                  "input": []})
        session.error(rejected, error)
    for error in ({"code": -32600, "message": "Invalid request: missing field `input`"},
                  {"code": -32600, "message": "expectedTurnId must not be empty"}):
        silent = session.request("turn/steer", {"threadId": THREAD, "expectedTurnId": ""})
        session.error(silent, error)  # the reference reports these to no one
    again = session.request("turn/steer", {"threadId": THREAD, "expectedTurnId": "turn-2",
                                           "input": [{"type": "text", "text": "x"}]})
    session.result(again, {"turnId": "turn-2"})
    session.complete("turn-2")
    steers = session.of_type("codex_turn_steer_event")
    assert [s["result"] for s in steers] == ["accepted"] + ["rejected"] * 8 + ["accepted"]
    assert [s["rejection_reason"] for s in steers[1:-1]] == [r for _, r in STEER_REJECTIONS]
    first = steers[0]
    assert list(first) == ["thread_id", "session_id", "expected_turn_id", "accepted_turn_id",
                           "app_server_client", "runtime", "thread_source", "subagent_source",
                           "parent_thread_id", "num_input_images", "result", "rejection_reason",
                           "created_at"]
    assert first["accepted_turn_id"] == "turn-2" and first["num_input_images"] == 1
    assert first["created_at"] == 1775600000
    assert all(s["accepted_turn_id"] is None for s in steers[1:-1])
    (turn,) = session.of_type("codex_turn_event")
    assert turn["steer_count"] == 2


SPAWN_SOURCE = {"subAgent": {"thread_spawn": {"parent_thread_id": THREAD, "depth": 1,
                                              "agent_path": None, "agent_nickname": "Atlas",
                                              "agent_role": "explorer"}}}


def test_subagent_thread_is_initialized_and_its_turns_go_to_the_parent_connection() -> None:
    session = Session()
    session.start_thread()
    child = "01a21287-9999-7000-8000-000000000001"
    session.notify("thread/started", {"thread": {
        "id": child, "sessionId": THREAD, "forkedFromId": None, "parentThreadId": None,
        "preview": "", "ephemeral": False, "modelProvider": "probe", "model": "gpt-mini",
        "createdAt": 1795607180, "source": SPAWN_SOURCE, "threadSource": "subagent",
        "turns": []}})
    # The parent's own thread/started is not a second event.
    session.notify("thread/started", {"thread": {"id": THREAD, "source": "vscode"}})
    (_root, sub) = session.of_type("codex_thread_initialized")
    assert sub["thread_id"] == child and sub["session_id"] == THREAD
    assert sub["app_server_client"] == {"product_client_id": "probe", "client_name": "probe",
                                        "client_version": "0.0.1", "rpc_transport": "in_process",
                                        "experimental_api_enabled": None}
    assert (sub["thread_source"], sub["subagent_source"], sub["parent_thread_id"],
            sub["initialization_mode"], sub["model"], sub["created_at"]) == (
        "subagent", "thread_spawn", THREAD, "new", "gpt-mini", 1795607180)
    # A turn the server ran on the subagent thread (no client turn/start) is attributed to
    # the parent's connection.
    session.notify("turn/started", {"threadId": child, "turn": {
        "id": "sub-turn", "rootTurnId": "turn-root", "status": "inProgress",
        "startedAt": 1795607181}})
    session.complete("sub-turn", thread_id=child)
    (turn,) = session.of_type("codex_turn_event")
    assert turn["app_server_client"]["rpc_transport"] == "stdio"
    assert turn["subagent_source"] == "thread_spawn" and turn["parent_thread_id"] == THREAD
    assert turn["root_turn_id"] == "sub-turn"  # turn/completed's rootTurnId wins


@pytest.mark.parametrize(("source", "expected"), [
    ({"subAgent": "review"}, "review"), ({"subAgent": "compact"}, "compact"),
    ({"subAgent": "memory_consolidation"}, "memory_consolidation"),
    ({"subAgent": {"other": "guardian"}}, "guardian")])
def test_subagent_sources(source: Any, expected: str) -> None:
    session = Session()
    session.start_thread()
    session.notify("thread/started", {"thread": {"id": "child", "parentThreadId": THREAD,
                                                 "source": source, "model": "m"}})
    (_, sub) = session.of_type("codex_thread_initialized")
    assert sub["subagent_source"] == expected and sub["parent_thread_id"] == THREAD


def test_turn_whose_connection_closes_midway_is_flushed_incomplete() -> None:
    session = Session()
    session.start_thread()
    session.start_turn("turn-1")
    session.usage("turn-1", total=15, last=15)
    events = session.analyzer.close(session.connection, 1795607190.0)
    (turn,) = [json.loads(encode_event(e))["event_params"] for e in events]
    assert turn["turn_id"] == "turn-1" and turn["status"] is None
    assert turn["completed_at"] == 0 and turn["duration_ms"] is None
    assert turn["started_at"] == 1795607174 and turn["total_tokens"] == 15
    assert session.analyzer.stats().reducer.turns_incomplete == 1


def test_turn_on_a_thread_started_before_the_tap_attached() -> None:
    session = Session()
    session.start_turn("late-turn", thread_id="thread-from-before")
    session.complete("late-turn", thread_id="thread-from-before")
    (turn,) = session.of_type("codex_turn_event")
    assert turn["thread_id"] == "thread-from-before"
    assert turn["session_id"] == "thread-from-before"
    assert turn["initialization_mode"] == "resumed" and turn["is_first_turn"] is False
    assert turn["app_server_client"]["product_client_id"] == "probe"
    assert turn["status"] == "completed" and turn["model"] is None


def test_turn_start_error_gives_no_turn() -> None:
    session = Session()
    session.start_thread()
    request = session.request("turn/start", {"threadId": THREAD, "input": []})
    session.error(request, {"code": -32600, "message": "Invalid request"})
    assert session.analyzer.finish(0.0) == []


def test_open_turns_are_bounded_and_evicted_turns_still_become_events() -> None:
    session = Session()
    session.analyzer.reducer.turns.capacity = 10
    session.start_thread()
    for n in range(25):
        session.start_turn(f"turn-{n}")
    assert len(session.analyzer.reducer.turns) == 10
    evicted = session.of_type("codex_turn_event")
    assert [t["turn_id"] for t in evicted] == [f"turn-{n}" for n in range(15)]
    assert all(t["status"] is None for t in evicted)
    assert session.analyzer.stats().reducer.turns_evicted == 15


@pytest.mark.parametrize("agent_turn_first", [False, True])
def test_a_spawned_agent_is_announced_by_the_spawn_item_in_either_order(
        agent_turn_first: bool) -> None:
    """codex 0.169.0 names a v1 agent's thread only in the spawn's collabAgentToolCall item;
    under load the agent's first turn can start before that item completes."""
    agent = "agent-thread"
    session = Session()
    session.start_thread()
    session.start_turn("parent-turn")
    spawn = {"type": "collabAgentToolCall", "id": "call-1", "tool": "spawnAgent",
             "status": "completed", "senderThreadId": THREAD, "receiverThreadIds": [agent],
             "model": "gpt-5-mini", "reasoningEffort": "medium",
             "agentsStates": {agent: {"status": "pendingInit", "message": None}},
             "startedAtMs": 1795607174000, "completedAtMs": 1795607174500}
    agent_turn = {"id": "agent-turn", "rootTurnId": "parent-turn", "items": [],
                  "itemsView": "notLoaded", "status": "inProgress", "error": None,
                  "startedAt": 1795607174, "completedAt": None, "durationMs": None}
    if agent_turn_first:
        session.notify("turn/started", {"threadId": agent, "turn": agent_turn})
    session.item("parent-turn", spawn)
    if not agent_turn_first:
        session.notify("turn/started", {"threadId": agent, "turn": agent_turn})
    session.complete("agent-turn", thread_id=agent)
    (thread,) = [t for t in session.of_type("codex_thread_initialized")
                 if t["thread_id"] == agent]
    assert (thread["subagent_source"], thread["parent_thread_id"], thread["model"]) == (
        "thread_spawn", THREAD, "gpt-5-mini")
    assert thread["app_server_client"]["rpc_transport"] == "in_process"
    (collab,) = session.of_type("codex_collab_agent_tool_call_event")
    assert collab["receiver_thread_ids"] == [agent] and collab["duration_ms"] == 500
    (turn,) = [t for t in session.of_type("codex_turn_event") if t["thread_id"] == agent]
    assert turn["is_first_turn"] is True
    assert (turn["model"], turn["reasoning_summary"], turn["subagent_source"]) == (
        "gpt-5-mini", "auto", "thread_spawn")
