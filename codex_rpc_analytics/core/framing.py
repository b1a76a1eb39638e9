"""Newline-delimited JSON framing, as codex app-server speaks it on stdio.

Rules (docs/app-server-protocol.md §2.1): a message ends at byte 0x0A and nowhere else. No
length limit of our own (codex sends single lines of tens of MB), no Unicode line splitting
(U+2028 appears raw inside strings), and a final line without ``\\n`` at EOF is still a
message. A trailing ``\\r`` is left on the line; the JSON decoder treats it as whitespace.

The framer only copies what it must: a chunk that holds whole lines is sliced, and the
partial tail is the only thing kept between calls. Once a huge line has been handed out its
buffer is dropped, so its memory goes back to the allocator. Past ``max_line_bytes`` nothing
more is assembled (skim.py).
"""

from __future__ import annotations

from .skim import JsonSkimmer

NEWLINE = b"\n"


class LineFramer:
    """Turns a byte stream into lines. Feed it chunks in order; it returns complete lines.

    ``max_line_bytes`` bounds what the *observer* assembles, never what is relayed. A longer
    line is, with ``skim``, streamed through a :class:`~.skim.JsonSkimmer` and returned as its
    small skeleton (counted in ``skimmed_lines``); without, or when even the skeleton is too
    large, it is skipped (counted in ``oversized_lines``). Framing resumes at the next newline.
    """

    __slots__ = ("_dropping", "_partial", "_skimmer", "max_line_bytes", "oversized_lines",
                 "skim", "skimmed_lines")

    def __init__(self, max_line_bytes: int | None = None, *, skim: bool = False) -> None:
        self._partial = bytearray()
        self._dropping = False
        self._skimmer: JsonSkimmer | None = None
        self.max_line_bytes = max_line_bytes
        self.skim = skim
        self.oversized_lines = 0
        self.skimmed_lines = 0

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held right now."""
        return len(self._partial)

    def feed(self, chunk: bytes) -> list[bytes]:
        if (not self._partial and not self._dropping and self._skimmer is None
                and chunk.endswith(NEWLINE)
                and (self.max_line_bytes is None or len(chunk) <= self.max_line_bytes)):
            whole = chunk.split(NEWLINE)  # whole lines only, none too long: the common case
            whole.pop()
            return whole
        first_newline = chunk.find(NEWLINE)
        if first_newline < 0:
            self._extend_partial(chunk)
            return []
        lines: list[bytes] = []
        head = chunk[:first_newline]
        if self._partial or self._dropping or self._skimmer is not None:
            self._extend_partial(head)
            if self._dropping:
                self._dropping = False
            elif self._skimmer is not None:
                self._finish_skim(lines)
            else:
                lines.append(bytes(self._partial))
            # A fresh buffer, not clear(): clear() keeps a huge line's allocation alive.
            self._partial = bytearray()
        else:
            self._append_line(lines, head)
        rest = chunk[first_newline + 1 :]
        if rest:
            *whole, tail = rest.split(NEWLINE)
            for line in whole:
                self._append_line(lines, line)
            if tail:
                self._extend_partial(tail)
        return lines

    def resync(self) -> None:
        """Bytes were lost before the next chunk (an observer that fell behind skipped some):
        the partial line is garbage and the next chunk may start mid-line, so drop both and
        resume at the next newline rather than glue unrelated bytes into one line."""
        self._partial = bytearray()
        self._skimmer = None
        self._dropping = True

    def finish(self) -> bytes | None:
        """End of stream: the unterminated last line, if any, is a message too."""
        if self._dropping:
            self._dropping = False
            self._partial = bytearray()
            return None
        if self._skimmer is not None:
            lines: list[bytes] = []
            self._finish_skim(lines)
            return lines[0] if lines else None
        if not self._partial:
            return None
        line = bytes(self._partial)
        self._partial = bytearray()
        return line

    def _append_line(self, lines: list[bytes], line: bytes) -> None:
        if self.max_line_bytes is not None and len(line) > self.max_line_bytes:
            if self.skim:
                self._skimmer = JsonSkimmer()
                self._skimmer.feed(line)
                self._finish_skim(lines)
            else:
                self.oversized_lines += 1
            return
        lines.append(line)

    def _extend_partial(self, data: bytes) -> None:
        if self._dropping:
            return
        if self._skimmer is not None:
            self._skimmer.feed(data)
            return
        if self.max_line_bytes is not None and len(self._partial) + len(data) > self.max_line_bytes:
            if self.skim:
                # Past what is worth assembling: skim the rest as it streams by.
                self._skimmer = JsonSkimmer()
                self._skimmer.feed(bytes(self._partial))
                self._skimmer.feed(data)
            else:
                self.oversized_lines += 1
                self._dropping = True
            self._partial = bytearray()
            return
        self._partial += data

    def _finish_skim(self, lines: list[bytes]) -> None:
        assert self._skimmer is not None
        line = self._skimmer.finish()
        self._skimmer = None
        if line is None:
            self.oversized_lines += 1
        else:
            self.skimmed_lines += 1
            lines.append(line)
