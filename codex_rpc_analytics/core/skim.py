"""A JSON line too long to assemble, skimmed into a small one analytics reads the same way.

Analytics reads a handful of short members near the top of a message (ids, model, status,
token counts; docs/analytics-events.md). A line of tens or hundreds of MB is almost all bulk
underneath: a ``thread/resume`` result's turn history, a file's contents in a string. Holding
the whole line (the relay has no limit; codex sends such lines) cost 3-4 times its size. So
past the framer's limit a line is no longer assembled: :class:`JsonSkimmer` reads it as it
streams by and keeps only its skeleton:

* every container (object or array) is kept while what it holds stays under
  ``keep_container`` bytes; one that grows past it is *elided*: its contents are dropped as
  they come and, when it closes, an object becomes ``{}`` and an array ``[{}]``, so that a
  non-empty array stays non-empty (``turns`` tells a new thread from one with history), and
  its one element decodes as any of the views' item structs;
* a string longer than ``keep_string`` becomes ``"[elided]"``;
* the message itself and its ``params``/``result``/``error`` (depth 1 and 2) are never
  elided: what analytics decodes lives there.

Memory is bounded by about ``keep_container`` per open container (nesting is capped at
``MAX_DEPTH``); a line whose skeleton itself would exceed ``max_output`` (no JSON structure,
or a top-level object with a million members) is given up (``finish`` returns None) and the
framer counts it as oversized. The skimmed line is valid JSON when the input was; it is not
the line that was relayed (that one went through untouched), only what analytics and a
recording see.
"""

from __future__ import annotations

import re

# Outside strings: the next byte that opens or closes something.
_STRUCTURAL = re.compile(rb'["\[\]{}]')
# Inside a string: runs of plain bytes and escape pairs, possessively (no backtracking);
# stops at the closing quote, or at a backslash that is the chunk's last byte.
_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
# Inside an elided container: everything but brackets, strings included, in one match.
_ELIDED_RUN = re.compile(rb'(?:[^"\[\]{}]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)

ELIDED_STRING = b'"[elided]"'
ELIDED_OBJECT = b"{}"
ELIDED_ARRAY = b"[{}]"
MAX_DEPTH = 64
# Containers at this depth or shallower are never elided (1: the message, 2: its members).
_PROTECTED_DEPTH = 2


class _Frame:
    __slots__ = ("elided", "nested", "opener", "parts", "size")

    def __init__(self, opener: int, elided: bool = False) -> None:
        self.opener = opener
        self.parts: list[bytes] = [] if elided else [bytes((opener,))]
        self.size = 0 if elided else 1
        self.elided = elided
        self.nested = 0  # open containers inside an elided one (not framed: nothing is kept)


class JsonSkimmer:
    """Feed the bytes of one line in order (without its newline); :meth:`finish` returns the
    skimmed line, or None when even its skeleton would be too large."""

    __slots__ = ("_escape", "_failed", "_in_string", "_stack", "_string", "_string_size",
                 "keep_container", "keep_string", "max_output")

    def __init__(self, *, keep_container: int = 256 * 1024, keep_string: int = 64 * 1024,
                 max_output: int = 4 * 1024 * 1024) -> None:
        self.keep_container = keep_container
        self.keep_string = keep_string
        self.max_output = max_output
        self._stack = [_Frame(0)]  # the root: what lies outside any container
        self._stack[0].parts, self._stack[0].size = [], 0
        self._in_string = False
        self._escape = False  # the previous chunk ended inside a string with a backslash
        self._string: list[bytes] | None = []  # the open string's bytes; None once elided
        self._string_size = 0
        self._failed = False

    def feed(self, data: bytes) -> None:
        if self._failed:
            return
        index, end = 0, len(data)
        while index < end and not self._failed:
            if self._in_string:
                index = self._string_part(data, index)
                continue
            top = self._stack[-1]
            if top.elided:
                run = _ELIDED_RUN.match(data, index)
                assert run is not None  # the pattern matches the empty string
                index = run.end()
                if index >= end:
                    break
                byte = data[index]
                if byte == 0x22:  # a string the chunk cuts: scan it as a string
                    self._open_string()
                    index += 1
                elif byte in (0x5B, 0x7B):  # [ {
                    top.nested += 1
                    index += 1
                else:  # ] }
                    index += 1
                    if top.nested:
                        top.nested -= 1
                    else:
                        self._close()
                continue
            match = _STRUCTURAL.search(data, index)
            stop = match.start() if match is not None else end
            if stop > index:
                self._keep(data[index:stop])
            if match is None:
                break
            byte = data[stop]
            index = stop + 1
            if byte == 0x22:
                self._open_string()
            elif byte in (0x5B, 0x7B):
                self._open(byte)
            elif len(self._stack) > 1:
                self._close()
            else:
                self._keep(data[stop:index])  # a stray closer at the top: not JSON anyway

    def finish(self) -> bytes | None:
        if self._failed:
            return None
        if self._in_string:  # an unterminated string: keep what we have, still not JSON
            self._in_string = False
            if self._string is not None:
                self._stack[-1].parts.extend(self._string)
        while len(self._stack) > 1:  # unclosed containers: their kept parts, unclosed
            frame = self._stack.pop()
            self._stack[-1].parts.extend(frame.parts)
        return b"".join(self._stack[0].parts)

    # -- containers ---------------------------------------------------------------------------

    def _open(self, opener: int) -> None:
        depth = len(self._stack)  # the new container's depth (the root is 0)
        self._stack.append(_Frame(opener, elided=depth > MAX_DEPTH))

    def _close(self) -> None:
        frame = self._stack.pop()
        if frame.elided:
            text = ELIDED_ARRAY if frame.opener == 0x5B else ELIDED_OBJECT
        else:
            frame.parts.append(b"]" if frame.opener == 0x5B else b"}")
            text = b"".join(frame.parts)
        self._keep(text)

    def _keep(self, text: bytes) -> None:
        top = self._stack[-1]
        if top.elided:
            return
        top.parts.append(text)
        top.size += len(text)
        depth = len(self._stack) - 1
        if depth > _PROTECTED_DEPTH and top.size > self.keep_container:
            top.elided, top.parts, top.size = True, [], 0
        elif sum(frame.size for frame in self._stack) > self.max_output:
            self._failed = True
            self._stack = [_Frame(0)]

    # -- strings ------------------------------------------------------------------------------

    def _open_string(self) -> None:
        self._in_string = True
        self._escape = False
        if self._stack[-1].elided:
            self._string, self._string_size = None, 0
        else:
            self._string, self._string_size = [b'"'], 1

    def _string_part(self, data: bytes, index: int) -> int:
        """Consume string bytes from ``index``; returns where to go on."""
        end = len(data)
        start = index
        if self._escape:  # the escaped byte the last chunk could not show
            self._escape = False
            index += 1
        body = _STRING_BODY.match(data, index)
        assert body is not None
        stop = body.end()
        closed = stop < end and data[stop] == 0x22
        if not closed and stop < end:  # a backslash, the chunk's last byte
            self._escape = True
            stop = end
        self._string_bytes(data[start:stop + 1] if closed else data[start:stop])
        if not closed:
            return end
        self._in_string = False
        text = self._string
        if text is not None:
            self._keep(b"".join(text))
        elif not self._stack[-1].elided:
            self._keep(ELIDED_STRING)
        return stop + 1

    def _string_bytes(self, piece: bytes) -> None:
        if self._string is None:
            return
        self._string.append(piece)
        self._string_size += len(piece)
        if self._string_size > self.keep_string:
            self._string = None  # too long to matter to analytics: elided
