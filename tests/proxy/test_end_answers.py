"""Every rpcAnalytics/* request handed over before analytics ended gets exactly one answer,
before the client's output closes, and nothing is logged for it (issue 10, item 13): a client
that closes its stdin right after a status or a flush, a child that exits right after, and
analytics ending at the grace point while a flush still waits for its sink."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codex_rpc_analytics.adapters.extensions import ANALYTICS_ENDED, ENDED_MESSAGE
from codex_rpc_analytics.adapters.in_process import InProcessProxy, MemoryDelivery, MemoryWriter
from codex_rpc_analytics.adapters.session import TapSession
from codex_rpc_analytics.examples.scripted_server import Script
from tests.delivery.support import write_chatgpt_auth
from tests.proxy.support import proxy, read_line, scripted
from tests.support import transcript

ENDED = {"code": ANALYTICS_ENDED, "message": ENDED_MESSAGE}
NOISE = (b"Traceback", b"exception calling callback", b"CancelledError", b"InvalidStateError")


class GatedDelivery(MemoryDelivery):
    """An embedder's delivery whose flush waits for its sink until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def flush(self, timeout: float) -> dict[str, Any]:
        self.release.wait(30)
        return super().flush(timeout)


def _by_id(lines: list[bytes]) -> dict[object, dict[str, Any]]:
    answers = [json.loads(line) for line in lines if b'"method"' not in line]
    ids = [answer["id"] for answer in answers]
    assert len(ids) == len(set(ids)), f"an answer came twice: {ids}"
    return {answer["id"]: answer for answer in answers}


async def _echo_until_eof(reader: asyncio.StreamReader, writer: MemoryWriter) -> None:
    """A server that exits as soon as its input ends."""
    while line := await reader.readline():
        writer.write(line)


@pytest.fixture
def no_log_noise(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.WARNING):
        yield
    assert [r.getMessage() for r in caplog.records] == []


async def test_in_process_requests_before_eof_are_answered_and_the_output_then_closes(
    no_log_noise: None,
) -> None:
    requests = b"".join(
        b'{"id":%d,"method":"rpcAnalytics/status"}\n' % n for n in range(20)
    ) + b'{"id":"f","method":"rpcAnalytics/flush","params":{"timeoutMs":100}}\n'
    proxy_ = InProcessProxy(_echo_until_eof)
    async with proxy_ as conn:
        await conn.send(b'{"method":"hello"}\n' + requests)
        conn.close()  # stdin closed at once; the server's output ends right after
        received = await asyncio.wait_for(conn.reader.read(), 10)
    answers = _by_id(received.splitlines())
    assert sorted(map(str, answers)) == sorted([*map(str, range(20)), "f"])
    assert all("result" in answer for answer in answers.values())
    assert received.startswith(b'{"method":"hello"}\n') and received.endswith(b"\n")


async def test_in_process_end_answers_what_is_still_waiting_and_drops_nothing_twice(
    no_log_noise: None,
) -> None:
    """Two flushes wait for a sink, a status waits behind them on the executor: the end gives
    the status its snapshot and each flush the analytics-ended error, before EOF."""
    delivery = GatedDelivery()
    proxy_ = InProcessProxy(_echo_until_eof, delivery=delivery)
    try:
        async with proxy_ as conn:
            await conn.send(b'{"id":1,"method":"rpcAnalytics/flush"}\n'
                            b'{"id":2,"method":"rpcAnalytics/flush"}\n'
                            b'{"id":3,"method":"rpcAnalytics/status"}\n'
                            b'{"id":null,"method":"rpcAnalytics/status"}\n')
        received = await asyncio.wait_for(conn.reader.read(), 10)
    finally:
        delivery.release.set()
    answers = _by_id(received.splitlines())
    assert set(answers) == {1, 2, 3}
    assert answers[1]["error"] == answers[2]["error"] == ENDED
    assert answers[3]["result"]["proxy"]["transport"] == "in_process"
    assert proxy_.session.extension_answers == 3


def test_a_session_that_ends_answers_skipped_and_later_requests_with_an_error() -> None:
    answers: list[bytes] = []
    session = TapSession(transport="stdio", delivery=MemoryDelivery())
    session.start(answers.append)
    session.extension_request(b'{"id":1,"method":"rpcAnalytics/status"}', time.time())
    session.extension_request(b'{"method":"rpcAnalytics/status"}', time.time())
    session.end()  # before the request was reached (a deadline)
    session.extension_request(b'{"id":"late","method":"rpcAnalytics/flush"}', time.time())
    assert [json.loads(a) for a in answers] == [{"error": ENDED, "id": 1},
                                                {"error": ENDED, "id": "late"}]
    assert session.answers_expected == session.extension_answers == 2


@contextlib.contextmanager
def _collector_that_never_answers() -> Iterator[str]:
    """An HTTP sink that accepts connections and never answers: a flush waits for it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"


def _stdio_proxy(tmp_path: Path, child: list[str], sink: str, *flags: str) -> list[str]:
    codex_home = tmp_path / "codex-home"
    write_chatgpt_auth(codex_home)
    return proxy(tmp_path / "state", child, "--sink", sink, "--codex-home", str(codex_home),
                 *flags)


def _play(process: subprocess.Popen[bytes], steps: list[tuple[bytes, list[bytes]]]) -> None:
    """Client lines, each followed by reading the server lines that answer it."""
    assert process.stdin is not None and process.stdout is not None
    for line, replies in steps:
        process.stdin.write(line + b"\n")
        process.stdin.flush()
        for reply in replies:
            assert read_line(process.stdout) == reply + b"\n"


def test_stdio_a_flush_still_waiting_when_the_child_exits_gets_an_answer_before_eof(
    tmp_path: Path,
) -> None:
    """The session's events wait for a sink that never answers; the client asks for a status,
    a flush and a status and closes its stdin; the child exits at once. The time to drain
    runs out before the flush could finish: it is answered analytics-ended, before EOF."""
    script = Script.load(transcript("fakeauth_full_flow"))
    with _collector_that_never_answers() as sink:
        process = subprocess.Popen(
            _stdio_proxy(tmp_path, scripted(transcript("fakeauth_full_flow")), sink,
                         "--grace", "1"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdin is not None and process.stdout is not None
        try:
            _play(process, script.steps)
            process.stdin.write(
                b'{"id":"s1","method":"rpcAnalytics/status"}\n'
                b'{"id":"f","method":"rpcAnalytics/flush","params":{"timeoutMs":30000}}\n'
                b'{"id":"s2","method":"rpcAnalytics/status"}\n')
            process.stdin.close()
            out = process.stdout.read()
            assert process.stderr is not None
            stderr = process.stderr.read()
            process.wait(10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0
    assert out.endswith(b"\n")
    answers = _by_id([line for line in out.splitlines()
                      if json.loads(line).get("id") in ("s1", "s2", "f")])
    assert set(answers) == {"s1", "s2", "f"}
    assert answers["s1"]["result"]["events"]["produced"] > 0  # they wait for the sink
    assert "result" in answers["s2"]
    assert answers["f"]["error"] == ENDED  # its sink never answers: the drain ran out first
    assert not [noise for noise in NOISE if noise in stderr], stderr


def test_stdio_analytics_ending_at_the_grace_point_answers_every_request(
    tmp_path: Path,
) -> None:
    """Two flushes wait for a sink that never answers, a status waits behind them; SIGTERM,
    and the child outlives its grace: at the grace point the status gets its snapshot and
    the flushes the analytics-ended error, once each, with nothing on stderr about it; a
    request after that is answered the same way."""
    script = Script.load(transcript("fakeauth_full_flow"))
    child = scripted(transcript("fakeauth_full_flow"), "--on-sigterm", "ignore")
    with _collector_that_never_answers() as sink:
        process = subprocess.Popen(_stdio_proxy(tmp_path, child, sink, "--grace", "0.6"),
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        assert process.stdin is not None and process.stdout is not None
        child_pid = 0
        try:
            _play(process, script.steps[:3])  # initialize, initialized, thread/start
            process.stdin.write(b'{"id":"pid","method":"rpcAnalytics/status"}\n')
            process.stdin.flush()
            child_pid = json.loads(read_line(process.stdout))["result"]["proxy"]["child_pid"]
            flush = b'"method":"rpcAnalytics/flush","params":{"timeoutMs":30000}}\n'
            process.stdin.write(b'{"id":"f1",' + flush + b'{"id":"f2",' + flush
                                + b'{"id":"s","method":"rpcAnalytics/status"}\n')
            process.stdin.flush()
            process.send_signal(signal.SIGTERM)
            answers = _by_id([read_line(process.stdout, 10) for _ in range(3)])
            assert answers["f1"]["error"] == answers["f2"]["error"] == ENDED
            assert answers["s"]["result"]["proxy"]["child_pid"] == child_pid
            process.stdin.write(b'{"id":"late","method":"rpcAnalytics/status"}\n')
            process.stdin.flush()
            assert json.loads(read_line(process.stdout, 10)) == {"error": ENDED, "id": "late"}
            os.kill(child_pid, signal.SIGKILL)
            assert process.wait(10) == 128 + signal.SIGKILL
            assert process.stdout.read() == b""  # no late flush answer, no second answer
            assert process.stderr is not None
            stderr = process.stderr.read()
            assert not [noise for noise in NOISE if noise in stderr], stderr
        finally:
            if child_pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child_pid, signal.SIGKILL)
            if process.poll() is None:
                process.kill()
                process.wait()


def test_stdio_a_last_line_without_newline_is_eof_at_once_even_with_answers_owed(
    tmp_path: Path,
) -> None:
    """The child's last line has no newline and it exits: no line boundary will ever come, so
    the answers still owed (a flush waiting for a sink that never answers) could only be
    dropped. The client gets EOF as the child exits, as without the proxy, not once the flush
    or the drain time ran out (30 s and ~300 s here; the communicate timeout is a hang
    guard), and no answer ever lands inside the unterminated line."""
    script = Script.load(transcript("fakeauth_full_flow"))
    child = scripted(transcript("fakeauth_full_flow"), "--no-final-newline")
    *first, (last_line, last_replies) = script.steps
    expected = b"\n".join(last_replies)  # what is left after _play
    with _collector_that_never_answers() as sink:
        process = subprocess.Popen(_stdio_proxy(tmp_path, child, sink, "--grace", "300"),
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        try:
            _play(process, first)
            out, stderr = process.communicate(
                last_line + b"\n"
                + b'{"id":"f","method":"rpcAnalytics/flush","params":{"timeoutMs":30000}}\n'
                + b'{"id":"s","method":"rpcAnalytics/status"}\n', timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0
    answers = [line for line in out.split(b"\n") if b'"id":"f"' in line or b'"id":"s"' in line]
    server_bytes = b"\n".join(line for line in out.split(b"\n") if line not in answers)
    assert server_bytes == expected  # byte-exact, the last line still unterminated
    assert not [noise for noise in NOISE if noise in stderr], stderr


async def test_in_process_a_last_line_without_newline_closes_the_output_with_the_server() -> None:
    """In process, the same: the server's output ends inside a line while a flush waits for
    its sink; the client's output ends with it (the answer could never be put out), before
    the proxy is closed (the wait_for is a hang guard)."""

    async def partial_then_exit(reader: asyncio.StreamReader, writer: MemoryWriter) -> None:
        await reader.readline()
        writer.write(b'{"method":"thread/started"}\n{"method":"cut')

    delivery = GatedDelivery()
    try:
        async with InProcessProxy(partial_then_exit, delivery=delivery) as conn:
            await conn.send(b'{"method":"hello"}\n{"id":1,"method":"rpcAnalytics/flush"}\n')
            received = await asyncio.wait_for(conn.reader.read(), 10)
            delivery.release.set()
    finally:
        delivery.release.set()
    assert received == b'{"method":"thread/started"}\n{"method":"cut'


class SayingErrorDelivery(MemoryDelivery):
    """An embedder's delivery whose flush result has an ``error`` member of its own."""

    def flush(self, timeout: float) -> dict[str, Any]:
        return {"complete": False, "error": "sink unreachable"}


async def test_in_process_a_flush_result_with_an_error_member_is_answered_and_eof_follows(
    no_log_noise: None,
) -> None:
    """The flush result is the answer's ``result`` whatever members it has (pylsp used to
    merge an "error" member into the answer, lose it, and log 'exception calling callback'),
    and the client's output then ends with the server's (wait_for: a hang guard)."""
    async with InProcessProxy(_echo_until_eof, delivery=SayingErrorDelivery()) as conn:
        await conn.send(b'{"id":1,"method":"rpcAnalytics/flush"}\n')
        conn.close()
        received = await asyncio.wait_for(conn.reader.read(), 10)
    assert json.loads(received) == {"id": 1,
                                    "result": {"complete": False, "error": "sink unreachable"}}


async def test_in_process_a_request_analytics_cannot_read_goes_to_the_server_and_eof_follows(
    no_log_noise: None,
) -> None:
    """Invalid UTF-8 inside an rpcAnalytics/* request's params: the envelope reads it, the
    extension handler could not. It reaches the server untouched (here echoed back), instead
    of being cut out and never answered, which kept the client's output open for good."""
    unreadable = b'{"id":1,"method":"rpcAnalytics/status","params":{"a":"\xff"}}\n'
    async with InProcessProxy(_echo_until_eof) as conn:
        await conn.send(unreadable + b'{"id":2,"method":"rpcAnalytics/status"}\n')
        conn.close()
        received = await asyncio.wait_for(conn.reader.read(), 10)
    lines = received.splitlines(keepends=True)
    assert unreadable in lines
    assert [json.loads(line)["id"] for line in lines if line != unreadable] == [2]
