"""--redact keeps every field analytics reads; --record writes what replay reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_rpc_analytics.adapters.recording import Recorder
from codex_rpc_analytics.adapters.redact import (
    NOT_JSON_PLACEHOLDER,
    PLACEHOLDER,
    Redactor,
    redact_line,
)
from codex_rpc_analytics.adapters.replay import replay_transcript
from codex_rpc_analytics.core import encode_event
from codex_rpc_analytics.host import host_runtime
from tests.support import ALL_TRANSCRIPTS, transcript


def events_of(path: Path) -> list[bytes]:
    return [encode_event(event) for event in replay_transcript(
        path, transport="stdio", host_runtime=host_runtime(), warn=print)]


def redacted_copy(source: Path, target: Path) -> Path:
    rows = []
    redactor = Redactor()  # one connection: answers are paired with their requests
    for text in source.read_bytes().split(b"\n"):
        if not text.strip():
            continue
        row = json.loads(text)
        if row["dir"] in ("c2s", "s2c") and isinstance(row.get("raw"), str):
            row["raw"] = redactor.line(row["dir"], row["raw"].encode()).decode()
        rows.append(json.dumps(row))
    target.write_text("\n".join(rows) + "\n")
    return target


@pytest.mark.parametrize("name", ALL_TRANSCRIPTS)
def test_redacted_sessions_replay_to_the_same_events(name: str, tmp_path: Path) -> None:
    original = transcript(name)
    redacted = redacted_copy(original, tmp_path / "redacted.rpc.jsonl")
    assert events_of(redacted) == events_of(original)


def test_user_content_and_secrets_are_replaced() -> None:
    line = json.dumps({
        "id": 3, "method": "turn/start",
        "params": {"threadId": "t-1", "input": [{"type": "text", "text": "my secret plan"}],
                   "summary": "concise", "model": "gpt-5"},
    }).encode()
    doc = json.loads(redact_line(line, "c2s"))
    assert doc["params"]["input"] == [{"type": "text", "text": PLACEHOLDER}]
    assert doc["params"]["threadId"] == "t-1" and doc["params"]["summary"] == "concise"
    tokens = json.loads(redact_line(
        b'{"id":0,"result":{"accessToken":"eyJhbGciOi.secret","idToken":"x"}}'))
    assert tokens["result"] == PLACEHOLDER  # no request analytics reads: the whole result
    item = json.loads(redact_line(
        b'{"method":"item/completed","params":{"item":{"type":"commandExecution","id":"i1",'
        b'"command":"cat ~/.ssh/id_rsa","aggregatedOutput":"-----BEGIN","exitCode":0,'
        b'"preview":""}}}'))["params"]["item"]
    assert item == {"type": "commandExecution", "id": "i1", "command": PLACEHOLDER,
                    "aggregatedOutput": PLACEHOLDER, "exitCode": 0, "preview": ""}


# What a black-box test found kept (issue 10 item 6): user content under a key name that was
# allow-listed anywhere. Each secret must be gone from the redacted line.
LEAKS = [
    # tool-call arguments that happen to use the names of protocol fields
    ("s2c", b'{"method":"item/completed","params":{"threadId":"t","turnId":"u","item":{"type":'
            b'"mcpToolCall","id":"i","arguments":{"id":"ACME-CUSTOMER-4711","model":"Patient '
            b'John Doe","mode":"/home/jdoe/records"}}}}',
     ["ACME-CUSTOMER-4711", "Patient John Doe", "/home/jdoe"]),
    # a client-written error (an answer to a server request)
    ("c2s", b'{"id":"srv-1","error":{"code":-1,"message":"my password is hunter2",'
            b'"data":{"detail":"hunter2 again"}}}', ["hunter2"]),
    # anything under a source key, outside the thread's own source
    ("c2s", b'{"id":9,"method":"tool/call","params":{"source":{"file":"/home/jdoe/secret.txt",'
            b'"text":"confidential"}}}', ["/home/jdoe", "confidential"]),
    # user-controlled object keys
    ("c2s", b'{"id":10,"method":"config/write","params":{"env":{"ACME_API_KEY=abc123":"v",'
            b'"jdoe@example.com":1}}}', ["ACME_API_KEY", "abc123", "jdoe@example.com"]),
    ("s2c", b'{"method":"turn/completed","params":{"threadId":"t","turn":{"id":"u","status":'
            b'"failed","error":{"message":"cannot read /home/jdoe/taxes.pdf","codexErrorInfo":'
            b'"other"}}}}', ["/home/jdoe"]),
    ("s2c", b'{"id":11,"result":{},"Patient-John-Doe":"x"}', ["John"]),
    # places analytics reads only in part: a search's query, an image's prompt and path
    ("s2c", b'{"method":"item/completed","params":{"threadId":"t","turnId":"u","item":{"type":'
            b'"webSearch","id":"w","query":"symptoms of my illness","action":{"type":"search",'
            b'"queries":["my address"]}}}}', ["illness", "my address"]),
    ("s2c", b'{"method":"item/completed","params":{"threadId":"t","turnId":"u","item":{"type":'
            b'"imageGeneration","id":"g","revisedPrompt":"a photo of Jane","savedPath":'
            b'"/home/jdoe/jane.png"}}}', ["Jane", "/home/jdoe"]),
]


@pytest.mark.parametrize(("direction", "line", "secrets"), LEAKS)
def test_user_content_is_redacted_by_its_place_not_by_its_key_name(
    direction: str, line: bytes, secrets: list[str]
) -> None:
    redacted = Redactor().line(direction, line).decode()
    for secret in secrets:
        assert secret not in redacted, redacted
    json.loads(redacted)  # still JSON, shape kept where the protocol defines it


def test_error_messages_keep_only_the_servers_fixed_texts_analytics_classifies() -> None:
    from codex_rpc_analytics.core.error_kinds import steer_rejection_reason
    from codex_rpc_analytics.core.views import ErrorObject

    redactor = Redactor()
    redactor.line("c2s", b'{"id":5,"method":"turn/steer","params":{"threadId":"t"}}')
    cases = [
        ({"code": -32600, "message": "no active turn to steer"}, "no_active_turn"),
        ({"code": -32600, "message": "expected active turn id `u1` but found `u2`"},
         "expected_turn_mismatch"),
        ({"code": -32602, "message": "input too large: 12 chars of /home/jdoe",
          "data": {"input_error_code": "input_too_large", "path": "/home/jdoe"}},
         "input_too_large"),
        ({"code": -32600, "message": "cannot steer: see /home/jdoe/plan",
          "data": {"codexErrorInfo": {"activeTurnNotSteerable": {"turnKind": "review"}}}},
         "non_steerable_review"),
    ]
    for error, reason in cases:
        redactor.line("c2s", b'{"id":5,"method":"turn/steer","params":{"threadId":"t"}}')
        out = json.loads(redactor.line("s2c", json.dumps({"id": 5, "error": error}).encode()))
        assert "/home/jdoe" not in json.dumps(out) and "u1" not in json.dumps(out)
        redacted = ErrorObject(**out["error"])
        assert steer_rejection_reason(redacted) == reason


def test_lines_that_are_not_json_become_a_fixed_placeholder() -> None:
    assert redact_line(b"password=hunter2") == NOT_JSON_PLACEHOLDER
    assert redact_line(b"\xff\xfe") == NOT_JSON_PLACEHOLDER
    # Valid JSON with invalid UTF-8 inside a string is still redacted as JSON.
    assert json.loads(redact_line(b'{"id":1,"result":{"text":"\xff"}}')) == {
        "id": 1, "result": PLACEHOLDER}


def test_recording_round_trips_exact_lines(tmp_path: Path) -> None:
    path = tmp_path / "rec.rpc.jsonl"
    recorder = Recorder(path)
    recorder.start(started_at=1_700_000_000.5, argv=["codex", "app-server"], transport="stdio")
    lines = [("c2s", b'{"id":0,"method":"initialize"}'), ("s2c", b"\xff\x00raw\xe2\x80\xa8"),
             ("s2c", '{"method":"x","params":"\u2028"}'.encode())]
    for direction, line in lines:
        recorder.line(1_700_000_000.75, direction, line)
    recorder.close(1_700_000_001.0, {"exit_code": 0})
    from codex_rpc_analytics.adapters.transcript import (
        SessionMeta,
        meta_fields,
        read_rows,
        row_bytes,
        session_meta,
    )

    with path.open("rb") as stream:
        rows = [row for _, row in read_rows(stream)]  # type: ignore[misc]
    assert [(row.dir, row_bytes(row)) for row in rows[1:-1]] == lines
    assert rows[1].t == 0.25
    assert meta_fields(rows[0])["argv"] == ["codex", "app-server"]
    assert session_meta(path) == SessionMeta(1_700_000_000.5, "stdio")
    assert meta_fields(rows[-1]) == {"exit_code": 0}


def test_reduced_rather_than_replaced_keeps_what_analytics_reads() -> None:
    from codex_rpc_analytics.adapters.redact import diff_markers, image_stand_in
    from codex_rpc_analytics.core.error_kinds import redact_error_message
    from codex_rpc_analytics.core.images import data_url_size

    assert diff_markers("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-secret\n+new secret\n") == (
        "---\n+++\n\n-\n+")
    url = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
           "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
    stand_in = image_stand_in(url)
    assert stand_in != url and data_url_size(stand_in) == (1, 1)
    assert image_stand_in("data:text/plain;base64,aGk=") == PLACEHOLDER
    assert redact_error_message("stream disconnected before completion: my prompt") == (
        "stream disconnected before completion: [redacted]")
    assert redact_error_message('{"error": {"message": "echo of my prompt"}}') == "{}"
    assert redact_error_message("The API's own words about my prompt") == PLACEHOLDER


def test_the_redactor_keeps_the_places_the_tap_reads() -> None:
    """The redactor's tables mirror the tap's (private) ones: a message the tap starts reading
    must not be redacted away unnoticed (nor kept when it stops)."""
    from codex_rpc_analytics.adapters import redact
    from codex_rpc_analytics.core import tap

    assert set(redact.REQUEST_PARAMS) == set(tap._TRACKED_PARAMS)
    assert set(redact.SERVER_REQUEST_PARAMS) == set(tap._TRACKED_SERVER_PARAMS)
    assert set(redact.CLIENT_RESULTS) == set(tap._TRACKED_SERVER_PARAMS)
    assert set(redact.NOTIFICATIONS) == set(tap.Tap(0, "stdio")._notification_handlers)
    answered = ({"initialize", "turn/start", "turn/steer"} | set(tap._THREAD_METHODS)
                | set(tap._QUEUE_ACTIONS) | set(tap._TASK_METHODS))
    assert set(redact.RESULTS) == answered
