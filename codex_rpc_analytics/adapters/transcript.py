"""The transcript format of ``tests/fixtures/transcripts``: one JSON object a line,
``{"t": seconds since spawn, "dir": "meta"|"c2s"|"s2c"|"stderr", "raw": "<exact line>"}``.

Lines that are not valid UTF-8 cannot be a JSON string, so the recorder writes them as
``"raw_b64"`` (base64 of the exact bytes) instead of ``"raw"``; both read back as bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

DIRECTIONS = ("meta", "c2s", "s2c", "stderr")


class TranscriptRow(msgspec.Struct, frozen=True, gc=False):
    """One row. Not tracked by the garbage collector: a replay makes millions of them and
    none is part of a reference cycle."""

    t: float
    dir: str
    raw: Any = None
    raw_b64: str | None = None


class CorruptRow(msgspec.Struct, frozen=True):
    line_number: int
    reason: str


_row_decoder = msgspec.json.Decoder(TranscriptRow)
_meta_decoder = msgspec.json.Decoder(dict[str, Any])
# One row from its JSON line; raises ValueError (or RecursionError) when it is not one.
decode_row = _row_decoder.decode


def row_bytes(row: TranscriptRow) -> bytes:
    """The exact bytes of a c2s/s2c row; raises ValueError when the row has none."""
    if isinstance(row.raw, str):
        return row.raw.encode("utf-8", "surrogateescape")
    if row.raw_b64 is not None:
        try:
            return base64.b64decode(row.raw_b64, validate=True)
        except binascii.Error as error:
            raise ValueError(f"raw_b64 is not base64: {error}") from None
    raise ValueError("row has neither a string 'raw' nor 'raw_b64'")


RowItem = tuple[int, TranscriptRow] | CorruptRow


def read_rows(stream: BinaryIO) -> Iterator[RowItem]:
    """Rows in file order; a row that cannot be used is yielded as ``CorruptRow``."""
    for line_number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            row = _row_decoder.decode(line)
        except (ValueError, RecursionError) as error:
            yield CorruptRow(line_number, short_reason(str(error)))
            continue
        if row.dir not in DIRECTIONS:
            yield CorruptRow(line_number, f"unknown dir {row.dir!r}")
            continue
        yield line_number, row


def meta_fields(row: TranscriptRow) -> dict[str, Any]:
    """A meta row's payload (a JSON object, usually written as a string)."""
    raw = row.raw
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            return _meta_decoder.decode(raw)
        except ValueError:
            return {}
    return {}


def _emitted_at_ms(line: bytes) -> int | None:
    marker = line.rfind(b'"emittedAtMs":')
    if marker < 0:
        return None
    digits = line[marker + 14 :].split(b"}", 1)[0].split(b",", 1)[0].strip()
    return int(digits) if digits.isdigit() else None


class SessionMeta(msgspec.Struct, frozen=True):
    """What a transcript says about its session, beyond the wire lines."""

    time_base: float  # Unix time of ``t == 0``
    transport: str | None  # as recorded by ``proxy --record``; None in the fixtures


def session_meta(path: Path, scan_rows: int = 10_000) -> SessionMeta:
    """The meta of the transcript at ``path`` (see ``scan_session_meta``)."""
    with path.open("rb") as stream:
        return scan_session_meta(stream, scan_rows)[0]


def scan_session_meta(
    lines: Iterator[bytes] | BinaryIO, scan_rows: int = 10_000
) -> tuple[SessionMeta, list[bytes]]:
    """The session's meta from a transcript's first lines, and the lines it read to find it.

    ``time_base`` is a recorded ``started_at`` meta field, else inferred from the first
    server notification's ``emittedAtMs`` (the server's wall clock), else 0. The lines read
    are returned so that a caller replays them before the rest: a stream such as stdin is
    read once.
    """
    base: float | None = None
    inferred: float | None = None
    transport: str | None = None
    head: list[bytes] = []
    for line in lines:
        head.append(line)
        try:
            row = _row_decoder.decode(line)
        except (ValueError, RecursionError):
            row = None  # corrupt: the replay says so when it reaches it
        if row is not None and row.dir == "meta":
            fields = meta_fields(row)
            started_at = fields.get("started_at")
            if isinstance(started_at, int | float) and base is None:
                base = float(started_at)
            if isinstance(fields.get("transport"), str) and transport is None:
                transport = fields["transport"]
        elif row is not None and row.dir == "s2c" and inferred is None and isinstance(
                row.raw, str):
            emitted = _emitted_at_ms(row.raw.encode())
            if emitted is not None:
                inferred = emitted / 1000.0 - row.t
        if len(head) >= scan_rows or (base is not None and transport is not None):
            break
    if base is None:
        base = inferred if inferred is not None else 0.0
    return SessionMeta(base, transport), head


def short_reason(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
