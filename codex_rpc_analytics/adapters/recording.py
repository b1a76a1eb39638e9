"""``--record FILE``: the live session written in the transcript format ``replay`` reads.

Rows are ``{"t": seconds since started_at, "dir": "c2s"|"s2c"|"meta", "raw": "<exact line>"}``
(see transcript.py); a line that is not valid UTF-8 is written as ``raw_b64``. The first row is
a ``meta`` row with the argv, the transport, ``started_at`` (unix time of ``t == 0``), the
tool's version and whether the recording is redacted; the last one carries the exit status.

The recorder is driven by the analytics worker, off the relay path: it gets whole lines from
the worker's framer (a line over the analyzer's limit, 4 MiB, as its skimmed skeleton: see
core/skim.py). The file is created (or truncated and tightened) with mode 0600: it holds the
user's prompts, paths and model output. stderr is not recorded (it passes straight through on
its own fd), nor are the proxy's own ``rpcAnalytics/*`` requests and answers (they never were
part of the session).

A recording that cannot be written (disk full, ``/dev/full``, a file system gone) stops; the
session and its relay go on. The user is told once, on stderr, what failed and what to do
(one ``codex-rpc-analytics: error:`` line through ``logging``), ``rpcAnalytics/status`` says
the recording stopped (``recording.stopped``), and the rows already on disk stay there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from .. import __version__
from .redact import Redactor, redact_argv

LOGGER = logging.getLogger(__name__)
# Written in chunks of about this size; a crashed proxy loses at most the unwritten tail.
_BUFFER_BYTES = 1 << 20


class _Row(msgspec.Struct, omit_defaults=True):
    t: float
    dir: str
    raw: str | msgspec.UnsetType = msgspec.UNSET
    raw_b64: bytes | msgspec.UnsetType = msgspec.UNSET  # msgspec writes bytes as base64


_encoder = msgspec.json.Encoder()


def _open_private(path: Path) -> BinaryIO:
    """Truncate or create ``path`` readable by its owner only (0600): a recording holds
    prompts, paths and model output. An existing file is tightened before anything is
    written to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # not /dev/stdout or a FIFO someone gave us
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "wb", buffering=_BUFFER_BYTES)
    except BaseException:
        os.close(fd)
        raise


class RecordingError(Exception):
    """The recording file cannot be opened; a one-line message."""


class Recorder:
    """Appends transcript rows to one file. Not thread-safe: one worker thread owns it."""

    def __init__(self, path: Path, *, redact: bool = False) -> None:
        self.path = path
        self.redact = redact
        self._redactor = Redactor() if redact else None
        self.lines = 0  # session lines written (to the buffer)
        self.lines_saved = 0  # of them, those flushed to the file
        self.stopped: str | None = None  # why the recording stopped before its end
        try:
            self._file: BinaryIO | None = _open_private(path)
        except OSError as error:
            raise RecordingError(
                f"cannot write recording {path}: {error.strerror or error}"
            ) from None
        self.started_at = 0.0

    def start(self, *, started_at: float, argv: list[str], transport: str) -> None:
        self.started_at = started_at
        self.meta(0.0, {
            "argv": redact_argv(argv) if self.redact else argv,
            "transport": transport,
            "started_at": started_at,
            "tool": f"codex-rpc-analytics {__version__}",
            "redacted": self.redact,
        })

    def line(self, now: float, direction: str, line: bytes) -> None:
        if self._file is None:
            return
        if self._redactor is not None:
            line = self._redactor.line(direction, line)
        t = now - self.started_at
        try:
            row = _Row(t, direction, raw=line.decode("utf-8"))
        except UnicodeDecodeError:
            row = _Row(t, direction, raw_b64=line)
        self._write(_encoder.encode(row))
        if self._file is not None:
            self.lines += 1

    def meta(self, t: float, fields: dict[str, Any]) -> None:
        if self._file is not None:
            self._write(_encoder.encode(_Row(t, "meta",
                                             raw=_encoder.encode(fields).decode())))

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as error:
                self._fail(error)  # disk full or gone: stop recording, never the relay
            else:
                self.lines_saved = self.lines

    def close(self, now: float, fields: dict[str, Any] | None = None) -> None:
        if self._file is None:
            return
        if fields:
            self.meta(now - self.started_at, fields)
        if self._file is None:  # the last row failed
            return
        try:
            self._file.close()
        except OSError as error:
            self._fail(error)
        else:
            self.lines_saved = self.lines
        self._file = None

    def status(self) -> dict[str, Any]:
        """For ``rpcAnalytics/status``: the file, the session lines in it (as of the last
        flush), and why the recording stopped (None: it did not)."""
        return {"path": str(self.path), "lines": self.lines_saved, "stopped": self.stopped}

    def _write(self, row: bytes) -> None:
        assert self._file is not None
        try:
            self._file.write(row + b"\n")
        except OSError as error:
            self._fail(error)

    def _fail(self, error: OSError) -> None:
        """Stop recording: close the file (what reached it stays) and tell the user once."""
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):  # flushing the rest fails the same way
                file.close()
        self.stopped = error.strerror or str(error)
        LOGGER.error("recording %s stopped: %s; the session goes on unrecorded (free some "
                     "space or give --record a file on another disk)", self.path, self.stopped)
