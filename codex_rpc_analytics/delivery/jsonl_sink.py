"""``jsonl:PATH`` — append each event's payload bytes plus ``\\n`` to a local file.

Durability: each batch is written with one ``write`` on an ``O_APPEND`` descriptor and then
``fsync``-ed before the outbox marks it delivered. Batching keeps that to about one fsync per
second at most, and a line that the outbox calls delivered is really on disk. A write that fails
halfway (disk full) is truncated back, so a retry does not duplicate half a batch. The file is
created with mode 0600, like codex's own debug capture file.
"""

from __future__ import annotations

import contextlib
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
        return JsonlSink(self)


def parse_jsonl(spec: str) -> JsonlSinkSpec:
    raw = spec.removeprefix("jsonl:")
    if not raw:
        raise SinkSpecError("jsonl sink needs a path: --sink jsonl:PATH")
    if raw == "-":
        raise SinkSpecError("jsonl:- is refused: stdout is the JSON-RPC protocol stream")
    # Absolute, so the key (and where a later `flush` writes) does not depend on the cwd.
    return JsonlSinkSpec(path=str(Path(raw).expanduser().absolute()))


def _append(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
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


class JsonlSink:
    groups_by_originator = False

    def __init__(self, spec: JsonlSinkSpec) -> None:
        self._spec = spec

    @property
    def key(self) -> str:
        return self._spec.key

    def credentials_version(self) -> object:
        return None

    async def send(self, batch: Batch) -> SendResult:
        data = b"".join(payload + b"\n" for payload in batch.payloads)
        try:
            # Blocking, but a local append of <= 256 KiB plus one fsync; not worth a thread.
            _append(self._spec.path, data)
        except OSError as exc:
            # An unwritable file may become writable again: retried, never rejected.
            return SendResult(Verdict.RETRY, error=f"cannot append to {self._spec.path}: {exc}",
                              unreachable=True)
        return SendResult(Verdict.DELIVERED)

    async def close(self) -> None:
        return None
