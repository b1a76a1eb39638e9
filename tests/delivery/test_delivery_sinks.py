"""--sink parsing: accepted forms, refusals with one-line messages, stable keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_rpc_analytics.delivery import (
    CodexSinkSpec,
    HttpSinkSpec,
    JsonlSinkSpec,
    SinkSpec,
    SinkSpecError,
    parse_sink_spec,
    register_sink_scheme,
)
from codex_rpc_analytics.delivery.http_sink import build_body, events_url


def test_jsonl_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = parse_sink_spec("jsonl:out/events.jsonl")
    assert spec == JsonlSinkSpec(path=str(tmp_path / "out" / "events.jsonl"))
    assert spec.key == f"jsonl:{tmp_path}/out/events.jsonl"


@pytest.mark.parametrize(
    "value",
    [
        "https://chatgpt.com/backend-api/",
        "http://127.0.0.1:18765/backend-api/",
        "http://127.9.9.9/x/",
        "http://localhost:8080/",
        "http://[::1]:9/backend-api/",
        "codex",
    ],
)
def test_http_forms_accepted_and_keys_round_trip(value: str) -> None:
    spec = parse_sink_spec(value)
    assert isinstance(spec, CodexSinkSpec if value == "codex" else HttpSinkSpec)
    assert parse_sink_spec(spec.key) == spec


def test_scheme_and_host_are_canonical() -> None:
    assert parse_sink_spec("HTTPS://ChatGPT.com/backend-api/").key == (
        "https://chatgpt.com/backend-api/"
    )


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("http://example.com/backend-api/", "loopback"),
        ("http://10.0.0.1/", "loopback"),
        ("-", "stdout is the JSON-RPC protocol"),
        ("jsonl:-", "stdout"),
        ("jsonl:", "needs a path"),
        ("ftp://example.com/", "accepted forms: jsonl:PATH"),
        ("events.jsonl", "accepted forms"),
        ("", "accepted forms"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com/?q=1", "query"),
        ("codex:extra", "takes no argument"),
    ],
)
def test_refused_with_one_line_message(value: str, fragment: str) -> None:
    with pytest.raises(SinkSpecError) as info:
        parse_sink_spec(value)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert isinstance(info.value, ValueError)


def test_unknown_scheme_lists_every_form() -> None:
    with pytest.raises(SinkSpecError, match=r"jsonl:PATH.*https://HOST/PATH/.*loopback.*codex"):
        parse_sink_spec("s3://bucket/key")


def test_registry_accepts_new_schemes() -> None:
    class NullSpec(SinkSpec, frozen=True):
        @property
        def key(self) -> str:
            return "null"

    register_sink_scheme("null", "null", lambda value: NullSpec())
    try:
        assert parse_sink_spec("null").key == "null"
    finally:
        from codex_rpc_analytics.delivery import sinks

        del sinks._SCHEMES["null"]


def test_events_url_and_body() -> None:
    assert events_url("https://chatgpt.com/backend-api/") == (
        "https://chatgpt.com/backend-api/codex/analytics-events/events"
    )
    assert events_url("http://127.0.0.1:1/codex/analytics-events/events") == (
        "http://127.0.0.1:1/codex/analytics-events/events"
    )
    assert build_body([b'{"a":1}', b'{"b":"\xc3\xa9"}']) == b'{"events":[{"a":1},{"b":"\xc3\xa9"}]}'
