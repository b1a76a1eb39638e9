"""The only line awareness on the relay path, sans I/O: both proxies (the stdio poll loop,
in-process asyncio) use these two objects, each from its single relay thread.

``ClientStreamFilter`` (client → server): passes every byte through except complete lines that
are ``rpcAnalytics/*`` requests, which it hands back to be answered. Complete lines are
forwarded at once. A partial trailing line is held back only while it could still be such a
request: it starts with ``{`` and is at most ``hold_limit`` bytes (64 KiB). Holding costs the
server nothing, because codex acts on a line only once its newline has arrived. A longer line
is forwarded as it comes (and is then never intercepted, so an extension request over 64 KiB
reaches the server, which answers it as an unknown method).

``ClientOutput`` (everything written to the client): server chunks are written as they come;
the proxy's own answers are injected only at a line boundary of the server's output, never
inside a server line that is still in transfer. It is not thread-safe: answers made on other
threads are handed to the relay's thread first (a self-pipe for stdio, ``call_soon_threadsafe``
in process). A write error (the client went away) is remembered and later writes are dropped,
so the server side keeps draining.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ..core.envelope import Kind, classify
from .extensions import NAMESPACE, readable

NEWLINE = b"\n"
MARKER = NAMESPACE.encode()
DEFAULT_HOLD_LIMIT = 64 * 1024
_NO_LINES: list[bytes] = []


def is_extension_line(line: bytes) -> bool:
    """Whether a complete line is a request or notification in the ``rpcAnalytics/`` namespace,
    classified exactly as the server would (a null id makes it a notification)."""
    if MARKER not in line:
        return False
    message = classify(line)
    if message.kind is not Kind.REQUEST and message.kind is not Kind.NOTIFICATION:
        return False
    assert message.envelope is not None and message.envelope.method is not None
    # The envelope skips what it does not read (invalid UTF-8 in params): a line the handler
    # cannot decode stays the server's, rather than cut out and never answered.
    return message.envelope.method.startswith(NAMESPACE) and readable(line)


class ClientStreamFilter:
    __slots__ = ("_held", "_streaming", "hold_limit", "intercepted")

    def __init__(self, hold_limit: int = DEFAULT_HOLD_LIMIT) -> None:
        self.hold_limit = hold_limit
        self._held = b""
        self._streaming = False  # inside a line too long to hold: pass it through
        self.intercepted = 0

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def at_line_start(self) -> bool:
        """Nothing is held back and no long line is passing: a chunk of whole lines without
        the namespace's marker would be forwarded as it is (a relay's fast path)."""
        return not self._held and not self._streaming

    def feed(self, chunk: bytes) -> tuple[bytes, list[bytes]]:
        """Bytes to forward now, and the extension lines (without newline) cut out of them."""
        if self._streaming:
            newline = chunk.find(NEWLINE)
            if newline < 0:
                return chunk, _NO_LINES
            self._streaming = False
            if newline + 1 == len(chunk):
                return chunk, _NO_LINES
            forward, lines = self._from_line_start(chunk[newline + 1 :])
            return chunk[: newline + 1] + forward, lines
        if self._held:
            chunk = self._held + chunk
            self._held = b""
        return self._from_line_start(chunk)

    def finish(self) -> tuple[bytes, list[bytes]]:
        """End of the client's stream: a held unterminated last line is a message too."""
        held, self._held = self._held, b""
        if held and is_extension_line(held):
            self.intercepted += 1
            return b"", [held]
        return held, _NO_LINES

    def _from_line_start(self, data: bytes) -> tuple[bytes, list[bytes]]:
        last = data.rfind(NEWLINE)
        if last == len(data) - 1:
            complete, tail = data, b""
        elif last < 0:
            complete, tail = b"", data
        else:
            complete, tail = data[: last + 1], data[last + 1 :]
        lines = _NO_LINES
        if MARKER in complete:
            complete, lines = self._cut(complete)
        if tail:
            if len(tail) <= self.hold_limit and tail.lstrip()[:1] in (b"{", b""):
                self._held = tail
            else:
                complete += tail
                self._streaming = True
        return complete, lines

    def _cut(self, complete: bytes) -> tuple[bytes, list[bytes]]:
        kept: list[bytes] = []
        lines: list[bytes] = []
        start = 0
        size = len(complete)
        while start < size:
            end = complete.index(NEWLINE, start) + 1
            line = complete[start : end - 1]
            if is_extension_line(line):
                lines.append(line)
            else:
                kept.append(complete[start:end])
            start = end
        if not lines:
            return complete, _NO_LINES
        self.intercepted += len(lines)
        return b"".join(kept), lines


class PassThroughFilter(ClientStreamFilter):
    """Intercepts nothing: with analytics off, ``rpcAnalytics/*`` requests reach the server,
    which answers them as unknown methods, exactly as without the proxy."""

    __slots__ = ()

    def feed(self, chunk: bytes) -> tuple[bytes, list[bytes]]:
        return chunk, _NO_LINES

    def finish(self) -> tuple[bytes, list[bytes]]:
        return b"", _NO_LINES


class ClientOutput:
    """Orders what goes to the client: server bytes, and answers at line boundaries.

    ``write`` takes a chunk whole (it may buffer what the client cannot take yet) or raises
    ``OSError`` when the client is gone.
    """

    __slots__ = ("_at_boundary", "_closed", "_on_close", "_pending", "_write", "broken",
                 "dropped_answers", "injected")

    def __init__(self, write: Callable[[bytes], object],
                 on_close: Callable[[], object] | None = None) -> None:
        self._write = write
        self._on_close = on_close
        self._at_boundary = True
        self._pending: list[bytes] = []
        self._closed = False
        self.broken = False  # a write failed: the client is gone
        self.injected = 0
        self.dropped_answers = 0

    def server_chunk(self, data: bytes) -> None:
        if not self.broken:
            try:
                self._write(data)
            except OSError:
                self.broken = True
        self._at_boundary = data[-1] == 10  # b"\n"; chunks are never empty
        if self._pending and self._at_boundary:
            self._flush_pending()

    def inject(self, answer: bytes) -> None:
        """One complete answer line; written now if the server's output is at a boundary."""
        if self._closed or self.broken:
            self.dropped_answers += 1
            return
        self._pending.append(answer)
        if self._at_boundary:
            self._flush_pending()

    @property
    def at_boundary(self) -> bool:
        """Whether an answer injected now would go out (the server's output is between
        lines); once the server's output has ended inside a line, no answer ever will."""
        return self._at_boundary

    def fail(self) -> None:
        """A write the client never took failed later (buffered output): the client is gone."""
        self.broken = True

    def close(self) -> None:
        """The server's output ended: answers still waiting for a boundary are dropped."""
        if self._closed:
            return
        self._closed = True
        if self._at_boundary and self._pending:
            self._flush_pending()
        self.dropped_answers += len(self._pending)
        self._pending = []
        if self._on_close is not None:
            with contextlib.suppress(OSError):
                self._on_close()

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        for answer in pending:
            if self.broken:
                self.dropped_answers += 1
                continue
            try:
                self._write(answer)
                self.injected += 1
            except OSError:
                self.broken = True
                self.dropped_answers += 1
