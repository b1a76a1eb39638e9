"""The relay's line awareness, pure: interception and injection at line boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_rpc_analytics.adapters.proxy_lines import (
    ClientOutput,
    ClientStreamFilter,
    is_extension_line,
)

STATUS = b'{"id":1,"method":"rpcAnalytics/status"}'
STREAM = (b'{"id":0,"method":"initialize","params":{}}\n' + STATUS + b"\n"
          b"not json rpcAnalytics/status\n"
          b'{"method":"rpcAnalytics/flush"}\r\n'
          b'{"id":2,"method":"thread/start","params":{"note":"rpcAnalytics/status"}}\n'
          b'{"id":3,"method":"rpcAnalytics/status"}')  # unterminated last line


def run(filt: ClientStreamFilter, pieces: list[bytes]) -> tuple[bytes, list[bytes]]:
    forwarded, lines = b"", []
    for piece in pieces:
        out, cut = filt.feed(piece)
        forwarded += out
        lines += cut
    out, cut = filt.finish()
    return forwarded + out, lines + cut


EXPECTED_FORWARD = (b'{"id":0,"method":"initialize","params":{}}\n'
                    b"not json rpcAnalytics/status\n"
                    b'{"id":2,"method":"thread/start","params":{"note":"rpcAnalytics/status"}}\n')
EXPECTED_LINES = [STATUS, b'{"method":"rpcAnalytics/flush"}\r',
                  b'{"id":3,"method":"rpcAnalytics/status"}']


@settings(max_examples=300)
@given(st.lists(st.integers(min_value=1, max_value=len(STREAM)), max_size=12))
def test_interception_does_not_depend_on_chunking(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert run(ClientStreamFilter(), [p for p in pieces if p]) == (EXPECTED_FORWARD,
                                                                  EXPECTED_LINES)


def test_whole_lines_are_forwarded_at_once_and_untouched() -> None:
    filt = ClientStreamFilter()
    chunk = b'{"id":0,"method":"initialize"}\n{"method":"initialized"}\n'
    out, lines = filt.feed(chunk)
    assert out is chunk and lines == []


def test_a_partial_request_is_held_until_its_newline_within_the_limit() -> None:
    filt = ClientStreamFilter(hold_limit=10)
    assert filt.feed(b'{"id":1') == (b"", [])
    assert filt.held == 7
    assert filt.feed(b',"x":1}\n') == (b'{"id":1,"x":1}\n', [])
    # Past the limit the line streams through and is never intercepted.
    assert filt.feed(b'{"id":2,"method":"rpcAnalytics/') == (
        b'{"id":2,"method":"rpcAnalytics/', [])
    assert filt.feed(b'status"}\n') == (b'status"}\n', [])


def test_a_partial_line_that_cannot_be_a_request_is_not_held() -> None:
    filt = ClientStreamFilter()
    assert filt.feed(b"plain text") == (b"plain text", [])


@pytest.mark.parametrize(("line", "expected"), [
    (b'{"id":1,"method":"rpcAnalytics/status"}', True),
    (b'{"id":null,"method":"rpcAnalytics/status"}', True),  # a notification
    (b'{"id":1.5,"method":"rpcAnalytics/status"}', False),  # the server drops it too
    (b'{"id":1,"result":"rpcAnalytics/status"}', False),
    (b'{"id":1,"method":"thread/start","params":{"x":"rpcAnalytics/status"}}', False),
    (b"rpcAnalytics/status", False),
    # Invalid UTF-8 the envelope skips but analytics cannot read: relayed untouched, for the
    # server to answer, never intercepted and then left without an answer.
    (b'{"id":1,"method":"rpcAnalytics/status","params":{"a":"\xff"}}', False),
    (b'{"id":1,"method":"rpcAnalytics/flush","x":"\xc3("}', False),
])
def test_what_counts_as_an_extension_line(line: bytes, expected: bool) -> None:
    assert is_extension_line(line) is expected


def test_answers_wait_for_a_line_boundary_of_the_server() -> None:
    written: list[bytes] = []
    output = ClientOutput(written.append)
    output.server_chunk(b'{"method":"a"')
    output.inject(b'{"id":1,"result":{}}\n')
    assert written == [b'{"method":"a"']
    output.server_chunk(b'}\n{"method":"b"}')
    assert written == [b'{"method":"a"', b'}\n{"method":"b"}']
    output.server_chunk(b"\n")
    assert written[-1] == b'{"id":1,"result":{}}\n'
    output.inject(b'{"id":2,"result":{}}\n')  # at a boundary: at once
    assert written[-1] == b'{"id":2,"result":{}}\n' and output.injected == 2


def test_a_client_that_went_away_does_not_stop_the_server_side() -> None:
    calls = []

    def write(data: bytes) -> None:
        calls.append(data)
        raise BrokenPipeError

    closed = []
    output = ClientOutput(write, on_close=lambda: closed.append(True))
    output.server_chunk(b"x\n")
    output.server_chunk(b"y\n")  # not attempted again
    output.inject(b"answer\n")
    output.close()
    assert calls == [b"x\n"] and output.broken and output.dropped_answers == 1
    assert closed == [True]
