"""Framing: split on byte 0x0A only, keep the last unterminated line, no limit of our own."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from codex_rpc_analytics.core.framing import LineFramer


def frame(chunks: list[bytes], max_line_bytes: int | None = None) -> list[bytes]:
    framer = LineFramer(max_line_bytes)
    lines: list[bytes] = []
    for chunk in chunks:
        lines.extend(framer.feed(chunk))
    final = framer.finish()
    if final is not None:
        lines.append(final)
    return lines


def expected_lines(data: bytes) -> list[bytes]:
    pieces = data.split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return pieces


def test_splits_on_newline_only_never_on_unicode_line_separators() -> None:
    line = '{"text":"a\u2028b\u2029c\x0bd\x0ce\x85f"}'.encode()
    assert frame([line + b"\n" + line + b"\r\n"]) == [line, line + b"\r"]


def test_final_line_without_newline_still_counts() -> None:
    assert frame([b'{"id":1}\n{"id":2}']) == [b'{"id":1}', b'{"id":2}']


def test_empty_stream_and_lone_newlines() -> None:
    assert frame([]) == []
    assert frame([b"\n\n"]) == [b"", b""]


def test_huge_line_across_many_chunks_and_buffer_released() -> None:
    framer = LineFramer()
    big = b"x" * (20 * 1024 * 1024)
    lines: list[bytes] = []
    for start in range(0, len(big), 65536):
        lines.extend(framer.feed(big[start : start + 65536]))
    assert framer.buffered == len(big)
    lines.extend(framer.feed(b"\nnext"))
    assert lines == [big]
    assert framer.buffered == 4  # only "next" is held after the huge line has passed


def test_observer_limit_skips_long_lines_and_resumes_at_next_newline() -> None:
    framer = LineFramer(max_line_bytes=10)
    out = framer.feed(b"short\n" + b"y" * 8)
    out += framer.feed(b"y" * 8)
    out += framer.feed(b"yy\nafter\n" + b"z" * 11 + b"\nend")
    assert out == [b"short", b"after"]
    assert framer.finish() == b"end"
    assert framer.oversized_lines == 2
    assert framer.buffered == 0


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0, max_value=2000), max_size=20))
def test_any_bytes_any_chunking_gives_the_same_lines(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert frame(chunks) == expected_lines(data)


def test_resync_drops_the_partial_line_and_resumes_after_the_next_newline() -> None:
    framer = LineFramer()
    assert framer.feed(b'{"id":1}\n{"id":2,"par') == [b'{"id":1}']
    framer.resync()  # bytes were lost here
    assert framer.feed(b'ams":{}}\n{"id":3}\n{"id":') == [b'{"id":3}']
    assert framer.finish() == b'{"id":'
    framer.resync()
    assert framer.feed(b"tail without newline") == []
    assert framer.finish() is None
