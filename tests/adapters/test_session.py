"""TapSession as a step function: whatever the slicing, the same events, in relay order."""

from __future__ import annotations

import base64
import json
import random
import time
from pathlib import Path
from typing import Any

from codex_rpc_analytics.adapters import session as session_module
from codex_rpc_analytics.adapters.in_process import MemoryDelivery
from codex_rpc_analytics.adapters.recording import Recorder
from codex_rpc_analytics.adapters.session import TapSession
from codex_rpc_analytics.examples.scripted_server import Script
from tests.support import STREAMING, recorded_events, transcript


def _chunks() -> list[tuple[str, bytes, float]]:
    """fakeauth_full_flow as the relay would see it, in 1000-byte chunks, at its own times."""
    rows = [json.loads(t) for t in transcript("fakeauth_full_flow").read_text().splitlines()]
    out: list[tuple[str, bytes, float]] = []
    for row in rows:
        if row["dir"] in ("c2s", "s2c"):
            data = row["raw"].encode() + b"\n"
            now = 1.7e9 + row["t"]
            out += [(row["dir"], data[i : i + 1000], now) for i in range(0, len(data), 1000)]
    return out


def _run(budget: float, **options: Any) -> tuple[TapSession, MemoryDelivery]:
    delivery = MemoryDelivery()
    session = TapSession(transport="stdio", delivery=delivery, **options)
    answers: list[bytes] = []
    session.start(answers.append)
    for direction, chunk, now in _chunks():
        session.observe(direction, chunk, now)  # type: ignore[arg-type]
        session.process(budget)
    while session.pending:
        session.process(budget)
    session.end({"exit_code": 0})
    return session, delivery


def test_the_same_events_whatever_the_analysis_budget() -> None:
    runs = []
    for budget in (0.0, 1e-6, 1.0):
        session, delivery = _run(budget)
        assert session.backlog_bytes == 0 and session.analytics_errors == 0
        runs.append(delivery.events)
    assert runs[0] == runs[1] == runs[2]
    assert [kind for kind, _ in runs[0]] == [
        json.loads(line)["event_type"] for line in recorded_events("fakeauth_full_flow")]
    thread = "codex_thread_initialized"
    assert [p for kind, p in runs[0] if kind == thread] == recorded_events(
        "fakeauth_full_flow", thread)


def test_work_left_over_is_reported_and_resumed() -> None:
    session = TapSession(transport="stdio", delivery=MemoryDelivery())
    session.start(lambda _answer: None)
    lines = b"".join(line + b"\n" for line in
                     Script.load(transcript("fakeauth_full_flow")).client_lines())
    session.observe("c2s", lines, time.time())
    assert session.pending
    assert session.process(0.0) is True  # one line, then the budget is spent
    steps = 1
    while session.process(0.0):
        steps += 1
    assert steps > 1 and not session.pending and session.backlog_bytes == 0


def test_events_go_to_delivery_a_batch_at_a_time_and_always_before_an_answer(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(session_module, "SUBMIT_INTERVAL_S", 3600.0)
    delivery = MemoryDelivery()
    submits: list[int] = []
    submit = delivery.submit
    monkeypatch.setattr(delivery, "submit", lambda events: (submits.append(len(events)),
                                                             submit(events)))
    session = TapSession(transport="stdio", delivery=delivery)
    answers: list[bytes] = []
    session.start(answers.append)
    chunks = _chunks()
    half = len(chunks) // 2
    for direction, chunk, now in chunks[:half]:
        session.observe(direction, chunk, now)  # type: ignore[arg-type]
    while session.process(1.0):
        pass
    first = session.events_produced
    assert first > 1 and submits == [first]  # the batch's events, in one hand-off
    for direction, chunk, now in chunks[half:]:
        session.observe(direction, chunk, now)  # type: ignore[arg-type]
    while session.process(1.0):
        pass
    assert session.events_produced > first and submits == [first]  # held: the interval
    assert session.idle_due() is not None
    session.extension_request(b'{"id":1,"method":"rpcAnalytics/status"}', time.time())
    session.process(1.0)
    assert len(delivery.events) == session.events_produced  # before the status is taken
    assert len(submits) == 2
    session.end()


def test_after_the_end_bytes_are_counted_not_analysed(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.rpc.jsonl")
    session = TapSession(transport="stdio", delivery=MemoryDelivery(), recorder=recorder)
    session.start(lambda _answer: None)
    session.observe("c2s", b'{"id":1,"method":"initialize"}\n{"partial', time.time())
    assert session.end({"exit_code": None}) is False  # queued work was skipped
    assert session.analytics_skipped_bytes > 0
    session.observe("s2c", b'{"id":1,"result":{}}\n', time.time())
    session.extension_request(b'{"id":2,"method":"rpcAnalytics/status"}', time.time())
    assert session.relay["s2c"].bytes == 21 and not session.pending
    assert session.extension_requests_unanswered == 1
    rows = [json.loads(t) for t in (tmp_path / "r.rpc.jsonl").read_text().splitlines()]
    assert json.loads(rows[-1]["raw"]) == {"exit_code": None}


def test_the_final_line_without_newline_is_analysed_at_the_end() -> None:
    script = Script.load(transcript("noauth_initialize"))
    delivery = MemoryDelivery()
    session = TapSession(transport="stdio", delivery=delivery)
    session.start(lambda _answer: None)
    client = b"\n".join(script.client_lines())  # no final newline
    server = b"\n".join(script.server_lines())
    session.observe("c2s", client, time.time())
    session.observe("s2c", server, time.time())
    assert session.finish(time.monotonic() + 5) is True
    assert session.analyzer.stats().tap.lines == (len(script.client_lines())
                                                  + len(script.server_lines()))


def _streaming_with_bulk(kept_copies: int = 0) -> bytes:
    """The streaming session's wire (both directions as one stream is enough here: the tap
    pairs by direction, so s2c only), with extra bulk lines between its own; each of its
    ``item/*`` notifications (which the tap reads: kept under a flood) ``kept_copies`` more
    times."""
    rows = [json.loads(t) for t in (STREAMING / "fakeauth_streaming_deltas.rpc.jsonl")
            .read_text().splitlines()]
    delta = next(r["raw"] for r in rows if "agentMessage/delta" in r.get("raw", ""))
    out = []
    for index, row in enumerate(rows):
        if row["dir"] in ("c2s", "s2c"):
            out.append((row["dir"], row["raw"].encode() + b"\n"))
            if row["raw"].startswith(('{"method":"item/started"', '{"method":"item/completed"')):
                out += [(row["dir"], row["raw"].encode() + b"\n")] * kept_copies
            out += [("s2c", delta.encode() + b"\n")] * (index % 40)
            if index % 10 == 0:  # a server request with its id last, and the client's answer
                out.append(("s2c", b'{"method":"item/commandExecution/requestApproval",'
                                   b'"params":{"itemId":"x"},"id":%d}\n' % index))
                out.append(("c2s", b'{"id":%d,"result":{"decision":"accept"}}\n' % index))
    return out  # type: ignore[return-value]


def _flooded_events(cuts: random.Random | None, max_backlog: int) -> tuple[TapSession, Any]:
    delivery = MemoryDelivery()
    session = TapSession(transport="stdio", delivery=delivery, max_backlog_bytes=max_backlog)
    session.start(lambda _answer: None)
    pending: dict[str, bytes] = {"c2s": b"", "s2c": b""}
    for direction, line in _streaming_with_bulk():
        data = pending[direction] + line
        cut = cuts.randrange(len(data) + 1) if cuts else len(data)
        if data[:cut]:
            session.observe(direction, data[:cut], 1.7e9)  # type: ignore[arg-type]
            session.process(0.0)  # one line: analysis falls behind, the backlog grows
        pending[direction] = data[cut:]
        other = "s2c" if direction == "c2s" else "c2s"
        if pending[other]:  # the other direction's rest goes before this one goes on
            session.observe(other, pending[other], 1.7e9)  # type: ignore[arg-type]
            pending[other] = b""
    for direction, rest in pending.items():
        if rest:
            session.observe(direction, rest, 1.7e9)  # type: ignore[arg-type]
    assert session.finish(time.monotonic() + 30)
    return session, delivery.events


def test_a_flooded_session_skips_bulk_and_keeps_every_event() -> None:
    calm, expected = _flooded_events(None, 1 << 30)
    assert {kind for kind, _ in expected} >= {"codex_thread_initialized", "codex_turn_event"}
    calm_tap = calm.analyzer.stats().tap
    for seed in range(6):
        session, events = _flooded_events(random.Random(seed), 64 * 1024)
        relay = session.relay["s2c"]
        assert relay.bulk_skipped_lines > 100 and relay.analytics_dropped_bytes == 0, seed
        assert events == expected, seed
        tap = session.analyzer.stats().tap
        assert tap.not_json == 0, seed  # no line glued to another
        # Every request (server requests with their id last too) and every answer was seen.
        assert (tap.requests, tap.responses, tap.orphan_answers) == (
            calm_tap.requests, calm_tap.responses, calm_tap.orphan_answers), seed


def test_a_flood_packs_what_it_keeps_so_more_than_the_bound_holds_raw_is_analysed() -> None:
    calm = TapSession(transport="stdio", delivery=MemoryDelivery())
    calm.start(lambda _answer: None)
    for direction, line in _streaming_with_bulk(kept_copies=40):
        calm.observe(direction, line, 1.7e9)  # type: ignore[arg-type]
    assert calm.finish(time.monotonic() + 30)
    expected = calm.delivery.events  # type: ignore[union-attr]
    # The relay under a flood reads what the pipe holds: lines come in chunks of many KiB.
    chunks: list[tuple[str, bytes]] = []
    for direction, line in _streaming_with_bulk(kept_copies=40):
        if chunks and chunks[-1][0] == direction and len(chunks[-1][1]) < 16384:
            chunks[-1] = (direction, chunks[-1][1] + line)
        else:
            chunks.append((direction, line))
    delivery = MemoryDelivery()
    session = TapSession(transport="stdio", delivery=delivery, max_backlog_bytes=32 * 1024)
    session.start(lambda _answer: None)
    for direction, chunk in chunks:
        session.observe(direction, chunk, 1.7e9)  # type: ignore[arg-type]
        session.process(0.0)  # one line: analysis falls behind, the backlog grows
    assert session.finish(time.monotonic() + 30)
    relay = session.relay["s2c"]
    # Kept lines well past the bound were queued packed, and none dropped.
    assert relay.packed_bytes > 3 * session.max_backlog_bytes
    assert relay.packed_into_bytes * 3 < relay.packed_bytes
    assert relay.analytics_dropped_bytes == 0
    assert delivery.events == expected
    tap, calm_tap = session.analyzer.stats().tap, calm.analyzer.stats().tap
    assert tap.not_json == 0
    assert (tap.requests, tap.responses) == (calm_tap.requests, calm_tap.responses)


def test_after_a_packed_chunk_is_dropped_analysis_resyncs_and_goes_on() -> None:
    """Past the bound a packed chunk is dropped; the packed chunks after it are analysed from
    the next line on."""
    script = Script.load(transcript("fakeauth_full_flow"))
    noise = random.Random(14)
    # Answers (never bulk) of random text: packed, they still fill a 64 KiB bound.
    junk = b"".join(b'{"id":"junk%d","result":"%s"}\n'
                    % (n, base64.b64encode(noise.randbytes(3000))) for n in range(60))
    server = b"".join(line + b"\n" for line in script.server_lines())
    client = b"".join(line + b"\n" for line in script.client_lines())
    delivery = MemoryDelivery()
    session = TapSession(transport="stdio", delivery=delivery, max_backlog_bytes=64 * 1024)
    session.start(lambda _answer: None)
    now = 1.7e9
    for start in range(0, len(junk), 16 * 1024):  # no analysis in between: a flood
        session.observe("s2c", junk[start : start + 16 * 1024], now)
    relay = session.relay["s2c"]
    assert relay.analytics_dropped_bytes > 0 and relay.packed_bytes > 0
    dropped_chunks = relay.analytics_dropped_chunks
    while session.backlog_bytes > session.max_backlog_bytes // 2:  # analysis catches up a bit
        session.process(0.0)
    assert session.backlog_bytes > session.flood_bytes  # still flooded
    # A line to end the partial one the drop left (the analyzer resyncs there), then the
    # session's own traffic, still flooded, packed anew and analysed.
    session.observe("s2c", b'"end of the junk"}\n', now)
    session.observe("c2s", client, now)
    session.observe("s2c", server, now)
    assert relay.analytics_dropped_chunks == dropped_chunks
    assert session.finish(time.monotonic() + 30)
    assert session.analytics_errors == 0
    assert [kind for kind, _ in delivery.events] == [
        json.loads(line)["event_type"] for line in recorded_events("fakeauth_full_flow")]
