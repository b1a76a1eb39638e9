"""TapSession as a step function: whatever the slicing, the same events, in relay order."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from codex_rpc_analytics.adapters import session as session_module
from codex_rpc_analytics.adapters.in_process import MemoryDelivery
from codex_rpc_analytics.adapters.recording import Recorder
from codex_rpc_analytics.adapters.session import TapSession
from codex_rpc_analytics.examples.scripted_server import Script
from tests.support import recorded_events, transcript


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


def test_events_are_held_back_briefly_and_always_handed_over_before_an_answer(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(session_module, "SUBMIT_INTERVAL_S", 3600.0)
    delivery = MemoryDelivery()
    session = TapSession(transport="stdio", delivery=delivery)
    answers: list[bytes] = []
    session.start(answers.append)
    chunks = _chunks()
    for direction, chunk, now in chunks:
        session.observe(direction, chunk, now)  # type: ignore[arg-type]
    while session.process(1.0):
        pass
    assert len(delivery.events) == 1  # the first went at once, the rest wait
    assert session.events_produced > 1 and session.idle_due() is not None
    session.extension_request(b'{"id":1,"method":"rpcAnalytics/status"}', time.time())
    session.process(1.0)
    assert len(delivery.events) == session.events_produced  # before the status is taken
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
