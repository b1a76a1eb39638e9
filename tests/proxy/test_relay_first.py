"""Relay first, always: analytics never takes the thread while relayable bytes wait, flooded or
not. Proven by the order of operations, not by a clock: the relay loop runs in this process
over real pipes with a session that notes, each time analysis is given the thread, how many
bytes the client had written that the relay had not read yet."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import random
import select
import termios
import time
from collections.abc import Iterator
from typing import Any

import pytest

from codex_rpc_analytics.adapters.relay_loop import DELIVERY_WAIT_MS, RelayLoop
from codex_rpc_analytics.adapters.session import TapSession
from codex_rpc_analytics.core.tap import Direction

PIPE_SIZE = 1 << 20


def _unread(fd: int) -> int:
    """Bytes waiting in the pipe behind ``fd``."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")


class WatchedSession(TapSession):
    """A real session that notes each relayed chunk and each analysis slice, in order."""

    def __init__(self, client_in: int, **options: Any) -> None:
        super().__init__(**options)
        self.client_in = client_in
        self.order: list[tuple[str, int]] = []

    def observe(self, direction: Direction, data: bytes, now: float) -> None:
        self.order.append(("relayed", len(data)))
        super().observe(direction, data, now)

    def process(self, budget: float) -> bool:
        self.order.append(("analysis while unread bytes waited", _unread(self.client_in)))
        return super().process(budget)


@pytest.fixture
def pipes() -> Iterator[list[tuple[int, int]]]:
    made: list[tuple[int, int]] = []
    yield made
    for pair in made:
        for fd in pair:
            with contextlib.suppress(OSError):
                os.close(fd)


def _relay_until_analysed(session: TapSession, client_in: tuple[int, int],
                          child_in: tuple[int, int], child_out: tuple[int, int],
                          client_out: tuple[int, int], poll: Any = None) -> bytes:
    """Run a RelayLoop over the pipes (the client's input already written and closed) until
    the client's input ended and analysis caught up; what reached the child's stdin."""
    relay = RelayLoop(client_in=client_in[0], client_out=client_out[1], child_in=child_in[1],
                      child_out=child_out[0], session=session)
    if poll is not None:
        relay._poll = poll
    session.start(relay.reply)
    try:
        # Over once the client's input ended and analysis caught up; asked at every turn.
        relay.run(lambda: relay.c2s_done and not session.pending, time.monotonic)
    finally:
        relay.close()
    received = b""
    while chunk := os.read(child_in[0], 1 << 16):
        received += chunk
    return received


def test_a_flooded_backlog_never_holds_back_the_next_ready_chunk(
        pipes: list[tuple[int, int]]) -> None:
    client_in, child_in, child_out, client_out = (os.pipe() for _ in range(4))
    pipes += [client_in, child_in, child_out, client_out]
    capacity = min(fcntl.fcntl(pair[1], fcntl.F_SETPIPE_SZ, PIPE_SIZE)
                   for pair in (client_in, child_in))
    # Answers: lines analytics needs, so nothing is taken out as bulk and the backlog grows
    # past a 16th of its bound (a flood) at once, and past the bound after a few 64 KiB chunks
    # (random text: packing the flood's backlog cannot shrink it much).
    noise = random.Random(14)
    line_number, lines = 0, list[bytes]()
    while (len(lines) + 1) * 200 < capacity - 4096:
        text = base64.b64encode(noise.randbytes(150))[: 200 - 32 - len(str(line_number))]
        lines.append(b'{"id":%d,"result":{"text":"%s"}}\n' % (line_number, text))
        line_number += 1
    sent = b"".join(lines)
    assert os.write(client_in[1], sent) == len(sent)
    os.close(client_in[1])
    session = WatchedSession(client_in[0], transport="stdio", delivery=None,
                             max_backlog_bytes=256 * 1024)
    received = _relay_until_analysed(session, client_in, child_in, child_out, client_out)
    assert received == sent  # every byte, in order
    relayed = [size for what, size in session.order if what == "relayed"]
    assert sum(relayed) == len(sent) and len(relayed) > 8
    counters = session.relay["c2s"]
    assert counters.analytics_dropped_bytes > 0  # flooded, then past the bound: dropped
    # Analysis ran, and only when the client had nothing left for the relay to read.
    analysis = [unread for what, unread in session.order if what != "relayed"]
    assert analysis and set(analysis) == {0}


class FarBehindDelivery:
    """Delivery as the session sees it: ``uncommitted`` says it has thousands of events still
    to commit the first ``times`` it is asked, then none."""

    def __init__(self, times: int) -> None:
        self.times = times

    def uncommitted(self) -> int:
        self.times -= 1
        return 10_000 if self.times >= 0 else 0

    def submit(self, events: Any) -> None:
        pass

    def status(self) -> dict[str, Any]:
        return {}

    def flush(self, timeout: float) -> dict[str, Any]:
        return {}


class RecordingPoll:
    """``select.poll`` that notes each timeout it was given."""

    def __init__(self, notes: list[tuple[str, object]]) -> None:
        self._poll = select.poll()
        self._notes = notes

    def register(self, fd: int, mask: int) -> None:
        self._poll.register(fd, mask)

    def unregister(self, fd: int) -> None:
        self._poll.unregister(fd)

    def poll(self, timeout: int | None = None) -> list[tuple[int, int]]:
        self._notes.append(("poll", timeout))
        return self._poll.poll(timeout)


def test_while_delivery_is_far_behind_analysis_gives_it_time_in_poll(
        pipes: list[tuple[int, int]]) -> None:
    """Delivery commits on its own thread, which needs the GIL: before each slice of analysis
    the relay waits for its fds with a timeout while delivery is far behind (a ready fd would
    end it), and without one otherwise."""
    client_in, child_in, child_out, client_out = (os.pipe() for _ in range(4))
    pipes += [client_in, child_in, child_out, client_out]
    for pair in (client_in, child_in):
        fcntl.fcntl(pair[1], fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    # Enough to start analysis at once (a batch), and many slices of it.
    sent = b"".join(b'{"id":%d,"result":{"text":"%s"}}\n' % (n, b"y" * 300) for n in range(2000))
    assert os.write(client_in[1], sent) == len(sent)
    os.close(client_in[1])
    notes: list[tuple[str, object]] = []

    class NotingSession(TapSession):
        def delivery_behind(self) -> bool:
            behind = super().delivery_behind()
            notes.append(("behind", behind))
            return behind

    session = NotingSession(transport="stdio", delivery=FarBehindDelivery(times=5))
    received = _relay_until_analysed(session, client_in, child_in, child_out, client_out,
                                     poll=RecordingPoll(notes))
    assert received == sent
    asked = [index for index, (what, _) in enumerate(notes) if what == "behind"]
    timeouts = [(notes[index][1], notes[index + 1]) for index in asked]
    assert timeouts[:5] == [(True, ("poll", DELIVERY_WAIT_MS))] * 5
    assert len(timeouts) > 5 and set(timeouts[5:]) == {(False, ("poll", 0))}
