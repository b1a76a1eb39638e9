"""The analyzer as adapters use it: relayed chunks in, events out, whatever the chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from codex_rpc_analytics.core import Analyzer, RuntimeInfo, encode_event
from tests.support import ALL_TRANSCRIPTS, wire_lines

HOST = RuntimeInfo("host", "linux", "1.0.0", "x86_64")


def events_from_lines(name: str) -> list[bytes]:
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio")
    events = []
    for direction, line in wire_lines(name):
        events += analyzer.feed_line(connection, direction, line, 0.0)  # type: ignore[arg-type]
    events += analyzer.finish(0.0)
    return [encode_event(event) for event in events]


def events_from_chunks(name: str, cuts: list[int]) -> list[bytes]:
    """The session relayed as two byte streams cut at arbitrary points, interleaved in
    message order (a chunk ends where the next message in the other direction starts)."""
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio")
    events = []
    for index, (direction, line) in enumerate(wire_lines(name)):
        data = line + b"\n"
        cut = cuts[index % len(cuts)] % (len(data) + 1) if cuts else len(data)
        for chunk in (data[:cut], data[cut:]):
            if chunk:
                events += analyzer.feed(connection, direction, chunk, 0.0)  # type: ignore[arg-type]
    events += analyzer.finish(0.0)
    return [encode_event(event) for event in events]


# No deadline: the scenario matrix's recordings run to thousands of lines (one of 1 MiB),
# which a loaded machine can stretch past hypothesis's 200 ms an example.
@settings(max_examples=30, deadline=None)
@given(st.sampled_from(ALL_TRANSCRIPTS), st.lists(st.integers(min_value=0), max_size=8))
def test_chunking_never_changes_the_events(name: str, cuts: list[int]) -> None:
    assert events_from_chunks(name, cuts) == events_from_lines(name)


def test_final_line_without_newline_counts_at_close() -> None:
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio")
    lines = wire_lines("gating_g1_no_analytics_section")
    events = []
    for direction, line in lines:
        events += analyzer.feed(connection, direction, line + b"\n", 0.0)  # type: ignore[arg-type]
    assert len(events) == 1
    analyzer2 = Analyzer(HOST)
    connection2 = analyzer2.open("stdio")
    stream = [(d, line + b"\n") for d, line in lines]
    # Drop the newline of the last server line: the thread/start result's line is whole but
    # its terminator never came; the event must still appear once the stream ends.
    last_s2c = max(i for i, (d, line) in enumerate(stream) if b'"result":{"thread"' in line)
    stream = stream[: last_s2c + 1]
    stream[-1] = (stream[-1][0], stream[-1][1].rstrip(b"\n"))
    events2 = []
    for direction, chunk in stream:
        events2 += analyzer2.feed(connection2, direction, chunk, 0.0)  # type: ignore[arg-type]
    assert events2 == []
    events2 += analyzer2.close(connection2, 0.0)
    assert [encode_event(e) for e in events2] == [encode_event(e) for e in events]


@given(st.lists(st.tuples(st.sampled_from(["c2s", "s2c"]), st.binary(max_size=300)),
                max_size=40))
def test_arbitrary_bytes_never_raise(chunks: list[tuple[str, bytes]]) -> None:
    analyzer = Analyzer(HOST, max_line_bytes=256)
    connection = analyzer.open("stdio")
    for direction, chunk in chunks:
        analyzer.feed(connection, direction, chunk, 0.0)  # type: ignore[arg-type]
    analyzer.finish(0.0)
    stats = analyzer.stats()
    assert stats.tap.lines >= 0 and stats.connections == 1


def test_framing_alone_then_lines_one_by_one_is_feed() -> None:
    """The proxy session frames with `lines` and taps each line later (a budget at a time);
    that must be `feed` exactly, and the line callback sees every framed line, the
    unterminated last one included."""
    seen: list[tuple[str, bytes]] = []
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio")
    events = []
    stream = [(d, line + b"\n") for d, line in wire_lines("fakeauth_full_flow")]
    stream.append(("c2s", b'{"id":99,"method":"thread/list","params":{}}'))  # no newline
    for direction, data in stream:
        for line in analyzer.lines(connection, direction, data):  # type: ignore[arg-type]
            seen.append((direction, line))
            events += analyzer.feed_line(connection, direction, line, 0.0)  # type: ignore[arg-type]
    events += analyzer.finish(0.0, lambda d, line, _now: seen.append((d, line)))
    assert [encode_event(e) for e in events] == events_from_chunks("fakeauth_full_flow", [])
    assert seen == [(d, data.rstrip(b"\n")) for d, data in stream]


def test_a_resync_drops_the_partial_line_and_the_bytes_up_to_the_next_newline() -> None:
    analyzer = Analyzer(HOST)
    connection = analyzer.open("stdio")
    assert analyzer.lines(connection, "c2s", b'{"id":1,"meth') == []
    analyzer.resync(connection, "c2s")  # bytes were lost here
    assert analyzer.lines(connection, "c2s", b'od":"x"}\n{"id":2}\n') == [b'{"id":2}']
    analyzer.resync(connection, "s2c")
    seen: list[bytes] = []
    analyzer.lines(connection, "s2c", b'{"partial')
    analyzer.finish(0.0, lambda _d, line, _now: seen.append(line))
    assert seen == []
