"""Reducer: `codex_thread_initialized` exactly as codex 0.169.0 sends it, key order included."""

from __future__ import annotations

import json

import pytest

from codex_rpc_analytics.core import Analyzer, RuntimeInfo, encode_event
from codex_rpc_analytics.core.runtime import parse_runtime
from tests.support import recorded_events, wire_lines

HOST = RuntimeInfo("host-version", "hostos", "9.9.9", "hostarch")


def thread_events(name: str, transport: str = "stdio") -> list[bytes]:
    analyzer = Analyzer(HOST)
    connection = analyzer.open(transport, 0)  # type: ignore[arg-type]
    events = []
    for direction, line in wire_lines(name):
        events += analyzer.feed_line(connection, direction, line, 0.0)  # type: ignore[arg-type]
    events += analyzer.close(connection, 0.0)
    return [encode_event(e) for e in events
            if type(e).__struct_config__.tag == "codex_thread_initialized"]


@pytest.mark.parametrize("name", ["fakeauth_full_flow", "gating_g1_no_analytics_section"])
def test_thread_initialized_is_byte_identical_to_codex(name: str) -> None:
    assert thread_events(name) == recorded_events(name, "codex_thread_initialized")


def test_new_resumed_forked_and_fork_source() -> None:
    params = [json.loads(line)["event_params"] for line in thread_events("fakeauth_full_flow")]
    assert [p["initialization_mode"] for p in params] == ["new", "resumed", "forked", "new"]
    # A resume reports the original creation time; a fork names its source.
    assert params[1]["created_at"] == params[0]["created_at"]
    assert params[2]["forked_from_thread_id"] == params[0]["thread_id"]


def test_websocket_transport_is_reported() -> None:
    (first, *_) = thread_events("fakeauth_full_flow", "websocket")
    assert json.loads(first)["event_params"]["app_server_client"]["rpc_transport"] == "websocket"


def _session(init_params: bytes, *extra: tuple[str, bytes]) -> list[dict[str, object]]:
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio")
    lines = [
        ("c2s", b'{"id":0,"method":"initialize","params":' + init_params + b"}"),
        ("s2c", b'{"id":0,"result":{"userAgent":"x/0.169.0 (Mac OS 15.5.0; arm64) t (x; 1)",'
                b'"platformOs":"macos"}}'),
        *extra,
    ]
    events = []
    for direction, line in lines:
        events += analyzer.feed_line(connection, direction, line, 0.0)  # type: ignore[arg-type]
    return [json.loads(encode_event(event))["event_params"] for event in events]


START = ("c2s", b'{"id":1,"method":"thread/start","params":{}}')
STARTED = ("s2c", b'{"id":1,"result":{"thread":{"id":"t","sessionId":"s","createdAt":-5,'
                  b'"source":{"subAgent":{"thread_spawn":{"parent_thread_id":"p"}}},'
                  b'"parentThreadId":"p","threadSource":"subagent","ephemeral":true},'
                  b'"model":"m"}}')


def test_capabilities_absent_null_or_empty() -> None:
    absent = _session(b'{"clientInfo":{"name":"a","version":"1"}}', START, STARTED)
    null = _session(b'{"clientInfo":{"name":"a","version":"1"},"capabilities":null}',
                    START, STARTED)
    empty = _session(b'{"clientInfo":{"name":"a","version":"1"},"capabilities":{}}',
                     START, STARTED)
    enabled = absent[0]["app_server_client"]
    assert isinstance(enabled, dict) and enabled["experimental_api_enabled"] is None
    assert null[0]["app_server_client"]["experimental_api_enabled"] is None  # type: ignore[index]
    assert empty[0]["app_server_client"]["experimental_api_enabled"] is False  # type: ignore[index]


def test_thread_metadata_and_runtime_from_the_wire() -> None:
    (params,) = _session(b'{"clientInfo":{"name":"a","version":"1"}}', START, STARTED)
    assert params["runtime"] == {"codex_rs_version": "0.169.0", "runtime_os": "macos",
                                 "runtime_os_version": "15.5.0", "runtime_arch": "aarch64"}
    assert params["session_id"] == "s" and params["ephemeral"] is True
    assert params["thread_source"] == "subagent" and params["subagent_source"] == "thread_spawn"
    assert params["parent_thread_id"] == "p" and params["created_at"] == 0


def test_thread_response_without_initialize_gives_nothing_and_is_counted() -> None:
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio")
    for direction, line in (START, STARTED):
        assert analyzer.feed_line(connection, direction, line, 0.0) == []  # type: ignore[arg-type]
    assert analyzer.stats().reducer.thread_responses_without_initialize == 1


def test_failed_thread_responses_give_nothing() -> None:
    failed = ("s2c", b'{"error":{"code":-32600,"message":"no rollout found"},"id":1}')
    assert _session(b'{"clientInfo":{"name":"a","version":"1"}}', START, failed) == []


def test_second_initialize_rejected_does_not_overwrite() -> None:
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio")
    lines = wire_lines("noauth_framing_edge_cases")
    events = []
    for direction, line in lines:
        events += analyzer.feed_line(connection, direction, line, 0.0)  # type: ignore[arg-type]
    params = [json.loads(encode_event(e))["event_params"] for e in events]
    assert len(params) == 2  # the two successful thread/start after initialize
    # init-1 had capabilities {} -> false; the rejected init-2 (no capabilities) changed nothing
    assert all(p["app_server_client"]["experimental_api_enabled"] is False for p in params)


@pytest.mark.parametrize(
    ("user_agent", "platform_os", "expected", "fallbacks"),
    [
        ("probe/0.169.0 (Debian 12.0.0; x86_64) xterm (probe; 0.0.1)", "linux",
         ("0.169.0", "linux", "12.0.0", "x86_64"), 0),
        ("codex_vscode/0.170.1 (Windows 10.0.22631; AMD64) vscode/1.2 (codex_vscode; 2)",
         "windows", ("0.170.1", "windows", "10.0.22631", "x86_64"), 0),
        ("a/1.0 (Arch Linux Rolling Unknown; aarch64) t (a; 1)", "linux",
         ("1.0", "linux", "Unknown", "aarch64"), 0),
        ("a/1.0", None, ("1.0", "hostos", "9.9.9", "hostarch"), 3),
        (None, None, ("host-version", "hostos", "9.9.9", "hostarch"), 4),
    ],
)
def test_runtime_parsing(user_agent: str | None, platform_os: str | None,
                         expected: tuple[str, ...], fallbacks: int) -> None:
    runtime, used = parse_runtime(user_agent, platform_os, HOST)
    assert (runtime.codex_rs_version, runtime.runtime_os, runtime.runtime_os_version,
            runtime.runtime_arch) == expected
    assert used == fallbacks
