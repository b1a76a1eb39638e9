"""Envelope classification mirrors the server's precedence and never raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codex_rpc_analytics.core.envelope import Kind, classify

CASES = [
    (b'{"id":1,"method":"thread/start","params":{}}', Kind.REQUEST),
    (b'{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{}}', Kind.REQUEST),
    (b'{"id":12,"method":"thread/start"}', Kind.REQUEST),  # missing params is still a request
    (b'{"id":1,"method":"x","result":{}}', Kind.REQUEST),  # method wins over result
    (b'{"method":"initialized"}', Kind.NOTIFICATION),
    (b'{"id":null,"method":"x"}', Kind.NOTIFICATION),  # a null id is not a request id
    (b'{"method":"turn/started","params":{},"emittedAtMs":1795607174389}', Kind.NOTIFICATION),
    (b'{"id":0,"result":{}}', Kind.RESPONSE),
    (b'{"id":1,"result":null}\r', Kind.RESPONSE),
    (b'{"error":{"code":-32600,"message":"Not initialized"},"id":"pre"}', Kind.ERROR),
    (b'{"id":1.5,"method":"x"}', Kind.NOT_ENVELOPE),
    (b"[1]", Kind.NOT_ENVELOPE),
    (b'{"a":1}', Kind.NOT_ENVELOPE),
    (b'{"id":null,"result":1}', Kind.NOT_ENVELOPE),
    (b"this is not json", Kind.NOT_JSON),
    (b'{"a":1}{"b":2}', Kind.NOT_JSON),
    (b"\x1b[?2004h", Kind.NOT_JSON),
    (b'{"method":"\xff\xfe"}', Kind.NOT_JSON),
    (b"", Kind.NOT_JSON),
]


@pytest.mark.parametrize(("line", "kind"), CASES)
def test_classification(line: bytes, kind: Kind) -> None:
    assert classify(line).kind is kind


def test_ids_keep_their_json_type() -> None:
    number = classify(b'{"id":1,"result":{}}').envelope
    text = classify(b'{"id":"1","result":{}}').envelope
    assert number is not None and text is not None
    assert number.id == 1 and text.id == "1" and number.id != text.id


def test_invalid_utf8_inside_params_still_classifies() -> None:
    message = classify(b'{"method":"item/agentMessage/delta","params":{"delta":"\xff"}}')
    assert message.kind is Kind.NOTIFICATION


def test_deep_nesting_is_classified_not_raised() -> None:
    assert classify(b"[" * 100_000).kind is Kind.NOT_ENVELOPE
    deep = b'{"method":"x","params":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert classify(deep).kind in (Kind.NOT_JSON, Kind.NOTIFICATION)


@given(st.binary(max_size=500))
def test_arbitrary_bytes_never_raise(line: bytes) -> None:
    assert isinstance(classify(line).kind, Kind)
