"""The in-process transport: the proxy's logic over in-memory asyncio streams.

The same pieces as the stdio proxy (``ClientStreamFilter`` cuts out ``rpcAnalytics/*``
requests, ``ClientOutput`` injects answers at line boundaries, a ``TapSession`` analyses off
the relay path), with asyncio tasks instead of a poll loop and the transport labelled
``in_process``. Nothing is spawned: the server is a coroutine function. Analysis runs on the
event loop in short slices scheduled with ``call_soon`` after the relay has handed over a
chunk, so callbacks that are already ready (the relay's) run first.

Two levels:

* ``InProcessProxy(server, delivery=...)``: an async context manager. ``server(reader, writer)``
  is the app-server side (it reads client lines from ``reader`` and writes its output to
  ``writer``, then returns); the context gives an ``InProcessConnection`` to talk to it as a
  client would. On exit the client's input is closed, the server is awaited, analytics are
  finished and the last events submitted.
* ``tap_streams(client_reader, client_writer, server_reader, server_writer, session)``: the
  relay between any two asyncio stream pairs (e.g. an embedder's own streams, or a subprocess
  made with ``asyncio.create_subprocess_exec``), with a ``TapSession`` the caller owns and
  ends afterwards with ``await finish_session(session, deadline, meta)``.

Delivery: anything with ``submit``/``status``/``flush`` (``delivery.Delivery`` fits, and the
caller keeps owning it: start and close it yourself); one that also has ``uncommitted()``
(events not committed yet) gets analysis to pause a millisecond between slices while that is
in the thousands, so that its thread gets the GIL. Without one, ``MemoryDelivery`` keeps
the events in a list (tests, embedders that want the events themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from ..core import RuntimeInfo
from .proxy_lines import ClientOutput, ClientStreamFilter
from .recording import Recorder
from .session import DEFAULT_MAX_BACKLOG_BYTES, DELIVERY_WAIT_S, DeliveryLike, TapSession

READ_SIZE = 1 << 20
DEFAULT_FINISH_TIMEOUT_S = 5.0
# One analysis step on the event loop runs about this long before yielding.
ANALYSIS_SLICE_S = 0.0005


class ByteWriter(Protocol):
    """The writing half of a stream; ``asyncio.StreamWriter`` and ``MemoryWriter`` are ones."""

    def write(self, data: bytes) -> object: ...

    async def drain(self) -> None: ...

    def close(self) -> object: ...


class MemoryWriter:
    """Writes into an ``asyncio.StreamReader`` in the same process: an in-memory pipe end.

    ``close()`` is the writer's EOF. There is no back-pressure beyond yielding to the loop in
    ``drain()``; the reading side is expected to keep reading.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._closed = False

    def write(self, data: bytes) -> None:
        if self._closed:
            raise BrokenPipeError("write to a closed in-memory stream")
        if data:
            self._reader.feed_data(data)

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def write_eof(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._reader.feed_eof()

    def is_closing(self) -> bool:
        return self._closed

    async def wait_closed(self) -> None:
        return None


def memory_pipe() -> tuple[asyncio.StreamReader, MemoryWriter]:
    """A connected (reader, writer) pair with no line-length limit on the reader."""
    reader = asyncio.StreamReader(limit=sys.maxsize)
    return reader, MemoryWriter(reader)


class MemoryDelivery:
    """Keeps submitted events in ``events`` as ``(event_type, payload)``; flush is a no-op."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def submit(self, events: Sequence[tuple[str, bytes]]) -> None:
        self.events.extend(events)

    def status(self) -> dict[str, Any]:
        return {"kind": "memory", "submitted": len(self.events)}

    def flush(self, timeout: float) -> dict[str, Any]:
        return {"complete": True, "uncommitted": 0, "sinks": {}}


class SessionDriver:
    """Runs a ``TapSession``'s analysis on the running event loop: a slice at a time, each
    scheduled with ``call_soon`` once the relay handed over work, plus a timer for the
    recording's idle flush."""

    def __init__(self, session: TapSession, loop: asyncio.AbstractEventLoop) -> None:
        self.session = session
        self._loop = loop
        self._scheduled = False
        self._timer: asyncio.TimerHandle | None = None

    def kick(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._step)

    def _step(self) -> None:
        self._scheduled = False
        session = self.session
        if session.process(ANALYSIS_SLICE_S):
            if session.delivery_behind():  # its thread needs the GIL: let the loop wait
                self._scheduled = True
                self._loop.call_later(DELIVERY_WAIT_S, self._step)
            else:
                self.kick()
            return
        due = session.idle_due()
        if due is not None and self._timer is None:
            self._timer = self._loop.call_later(max(due - time.monotonic(), 0.0), self._timed)

    def _timed(self) -> None:
        self._timer = None
        self.kick()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def finish_session(session: TapSession, deadline: float,
                         meta: dict[str, Any] | None = None) -> bool:
    """Analyse what is queued until ``deadline`` (``time.monotonic()``), yielding to the loop
    between slices, then end the session (last events submitted, recording closed). True if
    nothing had to be skipped. Every ``rpcAnalytics/*`` request has its answer on the client's
    output when this returns (analytics-ended where it had none yet)."""
    while session.pending and time.monotonic() < deadline:
        session.process(min(ANALYSIS_SLICE_S * 10, max(deadline - time.monotonic(), 0.0)))
        await asyncio.sleep(0)
    complete = session.end(meta)
    await asyncio.sleep(0)  # answers made on a worker thread just before: their hop runs first
    return complete


async def tap_streams(
    client_reader: asyncio.StreamReader,
    client_writer: ByteWriter,
    server_reader: asyncio.StreamReader,
    server_writer: ByteWriter,
    session: TapSession,
) -> None:
    """Relay both ways until the server's output ends; ``session`` must not be started yet.

    Client EOF closes the server's input; the end of the server's output closes the client's
    output once every ``rpcAnalytics/*`` request read before is answered, or at once if it
    ended inside a line (an answer would have to wait for a boundary that never comes).
    Returns once the server's
    output has ended; ending the session (``finish_session``) is the caller's, and it answers
    whatever is still owed, so the client's output is closed by the time it returns.
    """
    loop = asyncio.get_running_loop()
    output = ClientOutput(client_writer.write, on_close=client_writer.close)
    driver = SessionDriver(session, loop)
    answers = _Answers(session, output)
    loop_thread = threading.get_ident()

    def reply(answer: bytes) -> None:  # the extension executor's threads, or the loop's
        if threading.get_ident() == loop_thread:
            answers.deliver(answer)  # (at the session's end: out before finish_session returns)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to answer
            loop.call_soon_threadsafe(answers.deliver, answer)

    session.start(reply, argv=["<in-process>"])
    client_task = asyncio.create_task(_client_to_server(client_reader, server_writer, session,
                                                        driver))
    try:
        await _server_to_client(server_reader, output, client_writer, session, driver,
                                answers)
    finally:
        if not client_task.done():
            client_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await client_task
        driver.cancel()


class _Answers:
    """Answers on their way to the client; the client's output closes once the server's has
    ended and every request read before has its answer."""

    def __init__(self, session: TapSession, output: ClientOutput) -> None:
        self._session = session
        self._output = output
        self._received = 0
        self._server_ended = False

    def deliver(self, answer: bytes) -> None:
        self._received += 1
        self._output.inject(answer)
        self._close_when_done()

    def server_ended(self) -> None:
        self._server_ended = True
        self._close_when_done()

    def _close_when_done(self) -> None:
        # Output ended inside a line: no answer could go out any more, so none is waited for.
        if self._server_ended and (self._output.broken or not self._output.at_boundary
                                   or self._received >= self._session.answers_expected):
            self._output.close()


async def _client_to_server(reader: asyncio.StreamReader, writer: ByteWriter,
                            session: TapSession, driver: SessionDriver) -> None:
    stream_filter = ClientStreamFilter()
    try:
        while True:
            chunk = await reader.read(READ_SIZE)
            forward, requests = stream_filter.feed(chunk) if chunk else stream_filter.finish()
            if forward:
                writer.write(forward)
                session.observe("c2s", forward, time.time())
                driver.kick()
                await writer.drain()
            for line in requests:
                session.extension_request(line, time.time())
                driver.kick()
            if not chunk:
                break
    except (ConnectionError, OSError):
        pass  # the server side stopped reading
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def _server_to_client(reader: asyncio.StreamReader, output: ClientOutput,
                            writer: ByteWriter, session: TapSession,
                            driver: SessionDriver, answers: _Answers) -> None:
    try:
        while True:
            chunk = await reader.read(READ_SIZE)
            if not chunk:
                break
            output.server_chunk(chunk)
            session.observe("s2c", chunk, time.time())
            driver.kick()
            if not output.broken:
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
    finally:
        answers.server_ended()


ServerHandler = Callable[[asyncio.StreamReader, MemoryWriter], Awaitable[object]]


class InProcessConnection:
    """The client's end of an ``InProcessProxy``."""

    def __init__(self, writer: MemoryWriter, reader: asyncio.StreamReader) -> None:
        self.writer = writer
        self.reader = reader  # everything the client receives, byte for byte

    async def send(self, data: bytes) -> None:
        """Raw bytes to the server (add the newline yourself; any chunking is fine)."""
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self) -> bytes:
        """The next line from the server (or an injected answer), without its newline.
        Raises ``EOFError`` when the output has ended (a final unterminated line is returned
        first)."""
        try:
            line = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                raise EOFError("the server's output has ended") from None
            return error.partial
        return line[:-1]

    def close(self) -> None:
        """End of the client's input (what closing stdin is for the stdio proxy)."""
        self.writer.close()


class InProcessProxy:
    """``async with InProcessProxy(server) as conn: await conn.send(...); await conn.receive()``"""

    def __init__(
        self,
        server: ServerHandler,
        *,
        delivery: DeliveryLike | None = None,
        record: Path | None = None,
        redact: bool = False,
        connection_id: int = 0,
        host_runtime: RuntimeInfo | None = None,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
        finish_timeout: float = DEFAULT_FINISH_TIMEOUT_S,
    ) -> None:
        self.delivery: DeliveryLike = delivery if delivery is not None else MemoryDelivery()
        recorder = Recorder(record, redact=redact) if record is not None else None
        self.session = TapSession(
            transport="in_process", delivery=self.delivery, connection_id=connection_id,
            host_runtime=host_runtime, recorder=recorder, max_backlog_bytes=max_backlog_bytes,
        )
        self._server = server
        self._finish_timeout = finish_timeout
        self._tasks: list[asyncio.Task[Any]] = []
        self._connection: InProcessConnection | None = None
        self.finished = False

    async def __aenter__(self) -> InProcessConnection:
        client_in_r, client_in_w = memory_pipe()
        client_out_r, client_out_w = memory_pipe()
        server_in_r, server_in_w = memory_pipe()
        server_out_r, server_out_w = memory_pipe()

        async def run_server() -> None:
            try:
                await self._server(server_in_r, server_out_w)
            finally:
                server_out_w.close()

        self._tasks = [
            asyncio.create_task(run_server()),
            asyncio.create_task(tap_streams(client_in_r, client_out_w, server_out_r,
                                            server_in_w, self.session)),
        ]
        self._connection = InProcessConnection(client_in_w, client_out_r)
        return self._connection

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's input, wait for the server and the relay, finish analytics."""
        if self.finished:
            return
        self.finished = True
        if self._connection is not None:
            self._connection.close()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        deadline = time.monotonic() + self._finish_timeout
        await finish_session(self.session, deadline, {"exit_code": 0, "child_exited": True})
        for result in results:
            if isinstance(result, BaseException) and not isinstance(
                    result, asyncio.CancelledError):
                raise result
