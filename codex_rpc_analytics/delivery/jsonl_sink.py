"""``jsonl:PATH`` — append each event's payload bytes plus ``\\n`` to a local file.

Durability: each batch is written with one ``write`` on an ``O_APPEND`` descriptor and then
``fsync``-ed before the outbox marks it delivered. Batching keeps that to about one fsync per
second at most, and a line that the outbox calls delivered is really on disk. A write that fails
halfway (disk full) is truncated back, so a retry does not duplicate half a batch. The file is
created with mode 0600, like codex's own debug capture file; an existing file readable by
others (an older version, a umask, a file made by hand) is tightened to 0600 on the first
append, with one warning (one we do not own cannot be: one warning asks to ``chmod 600`` it).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from .retry import Verdict
from .sink_base import Batch, SendResult, SinkEnv, SinkSpec, SinkSpecError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class JsonlSinkSpec(SinkSpec, frozen=True):
    path: str

    @property
    def key(self) -> str:
        return f"jsonl:{self.path}"

    @property
    def kind(self) -> str:
        return "jsonl"

    def open(self, env: SinkEnv) -> JsonlSink:
        return JsonlSink(self, env.logger)


def parse_jsonl(spec: str) -> JsonlSinkSpec:
    raw = spec.removeprefix("jsonl:")
    if not raw:
        raise SinkSpecError("jsonl sink needs a path: --sink jsonl:PATH")
    if raw == "-":
        raise SinkSpecError("jsonl:- is refused: stdout is the JSON-RPC protocol stream")
    # Absolute, so the key (and where a later `flush` writes) does not depend on the cwd.
    return JsonlSinkSpec(path=str(Path(raw).expanduser().absolute()))


def _append(path: str, data: bytes) -> tuple[int, bool] | None:
    """Append ``data`` durably. When the file was readable by others: its mode and whether it
    could be tightened to 0600 (only a file of ours can); else None."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        loose = _keep_private(fd)
        if fcntl is not None:
            # Several proxies may append to one file: keep each batch contiguous.
            fcntl.flock(fd, fcntl.LOCK_EX)
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)
    return loose


def _keep_private(fd: int) -> tuple[int, bool] | None:
    st = os.fstat(fd)
    mode = st.st_mode & 0o777
    if not mode & 0o077:
        return None
    if st.st_uid == os.getuid():
        try:
            os.fchmod(fd, 0o600)
        except OSError:
            return mode, False
        return mode, True
    return mode, False


class JsonlSink:
    groups_by_originator = False

    def __init__(self, spec: JsonlSinkSpec, logger: logging.Logger | None = None) -> None:
        self._spec = spec
        self._logger = logger or logging.getLogger(__name__)
        self._warned_mode: int | None = None

    @property
    def key(self) -> str:
        return self._spec.key

    def credentials_version(self) -> object:
        return None

    async def send(self, batch: Batch) -> SendResult:
        data = b"".join(payload + b"\n" for payload in batch.payloads)
        try:
            # Blocking, but a local append of <= 256 KiB plus one fsync; not worth a thread.
            loose = _append(self._spec.path, data)
        except OSError as exc:
            # An unwritable file may become writable again: retried, never rejected.
            return SendResult(Verdict.RETRY, error=f"cannot append to {self._spec.path}: {exc}",
                              unreachable=True)
        if loose is not None and loose[0] != self._warned_mode:
            mode, tightened = loose
            self._warned_mode = mode
            if tightened:
                self._logger.warning("analytics sink %s: %s was readable by others (mode %04o); "
                                     "made it 0600", self.key, self._spec.path, mode)
            else:
                self._logger.warning("analytics sink %s: %s is readable by others (mode %04o); "
                                     "chmod 600 it", self.key, self._spec.path, mode)
        return SendResult(Verdict.DELIVERED)

    async def close(self) -> None:
        return None
