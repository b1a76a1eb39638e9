"""Over-long lines: skimmed as they stream by, to the skeleton analytics reads, in bounded
memory (issue 10 item 14: a 200 MiB line used to cost 3-4 times its size)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from codex_rpc_analytics.core import Analyzer, encode_event
from codex_rpc_analytics.core.framing import LineFramer
from codex_rpc_analytics.core.skim import JsonSkimmer
from codex_rpc_analytics.host import host_runtime
from tests.support import recorded_events, wire_lines

MiB = 1 << 20


def skim(data: bytes, cuts: list[int] = (), **limits: int) -> bytes | None:  # type: ignore[assignment]
    skimmer = JsonSkimmer(**limits)
    start = 0
    for cut in sorted(set(cuts)):
        skimmer.feed(data[start:cut])
        start = cut
    skimmer.feed(data[start:])
    return skimmer.finish()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    lambda inner: st.lists(inner, max_size=6)
    | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, data=st.data())
def test_skimming_is_the_identity_under_the_limits_whatever_the_chunking(
    value: Any, data: st.DataObject
) -> None:
    line = json.dumps({"id": 1, "result": value}, ensure_ascii=False).encode()
    cuts = data.draw(st.lists(st.integers(0, len(line)), max_size=12))
    assert skim(line, cuts) == line


@settings(max_examples=300, deadline=None)
@given(value=json_values, data=st.data())
def test_with_tiny_limits_the_skeleton_is_valid_json_and_chunking_never_matters(
    value: Any, data: st.DataObject
) -> None:
    # The message and its result (depths 1 and 2) are never elided; deeper containers are.
    doc = {"id": 1, "result": {"id": "t", "turns": [value, value], "model": "m"}}
    line = json.dumps(doc, ensure_ascii=False).encode()
    cuts = data.draw(st.lists(st.integers(0, len(line)), max_size=12))
    limits = {"keep_container": 40, "keep_string": 10}
    whole = skim(line, **limits)
    assert whole is not None and skim(line, cuts, **limits) == whole
    skimmed = json.loads(whole)
    assert skimmed["id"] == 1 and skimmed["result"]["model"] == "m"
    assert skimmed["result"]["id"] == "t"
    assert skimmed["result"]["turns"]  # never emptied: a history stays a history
    assert len(whole) <= len(line) + len(b"[{}]")


def _resume_with_history(history_bytes: int) -> tuple[list[tuple[str, bytes]], bytes]:
    """fakeauth_full_flow's wire lines with the thread/resume result's turns inflated."""
    lines = wire_lines("fakeauth_full_flow")
    resume_ids = {json.loads(line)["id"] for d, line in lines
                  if d == "c2s" and b'"thread/resume"' in line}
    out = []
    big = b""
    for direction, line in lines:
        doc = json.loads(line)
        if direction == "s2c" and doc.get("id") in resume_ids and "result" in doc:
            turn = {"id": "turn-old", "items": [{"type": "commandExecution",
                                                 "aggregatedOutput": "x\n" * 500}]}
            count = history_bytes // len(json.dumps(turn))
            doc["result"]["thread"]["turns"] = doc["result"]["thread"]["turns"] + [turn] * count
            line = big = json.dumps(doc, separators=(",", ":")).encode()
        out.append((direction, line))
    return out, big


def test_a_thread_resume_with_a_huge_history_still_gives_its_event_in_bounded_memory() -> None:
    lines, big = _resume_with_history(24 * MiB)
    assert len(big) > 20 * MiB
    analyzer = Analyzer(host_runtime())
    analyzer.open("stdio", 0)
    events = []
    now = 1_795_607_174.0
    peak = 0
    for direction, line in lines:
        data = line + b"\n"
        for start in range(0, len(data), 65536):  # as the relay hands them over
            events += analyzer.feed(0, direction, data[start:start + 65536], now)  # type: ignore[arg-type]
            observer = analyzer._observers[0]
            peak = max(peak, *(f.buffered for f in observer._framers.values()))
    events += analyzer.finish(now)
    thread_events = [encode_event(e) for e in events
                     if encode_event(e).startswith(b'{"event_type":"codex_thread_initialized"')]
    assert thread_events == recorded_events("fakeauth_full_flow", "codex_thread_initialized")
    assert peak <= 8 * MiB  # never the 20+ MiB line: a few MiB at most
    stats = analyzer.stats()
    assert stats.skimmed_lines == 1 and stats.oversized_lines == 0


def test_a_huge_string_line_is_skimmed_and_junk_without_structure_is_given_up() -> None:
    framer = LineFramer(1 * MiB, skim=True)
    line = b'{"id":7,"result":{"data":"' + b"A" * (8 * MiB) + b'"}}'
    got = []
    for start in range(0, len(line), 65536):
        got += framer.feed(line[start:start + 65536])
        assert framer.buffered <= 1 * MiB
    got += framer.feed(b"\n" + b"B" * (9 * MiB) + b"\n")
    assert got == [b'{"id":7,"result":{"data":"[elided]"}}']
    assert (framer.skimmed_lines, framer.oversized_lines) == (1, 1)
