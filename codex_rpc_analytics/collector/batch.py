"""One request body in, the rows to store and the events refused out. No I/O.

The body is what codex and our HTTP sink post: ``{"events":[e1,e2,…]}``, optionally gzip (or
deflate) encoded. Event ids come from ``X-Codex-Rpc-Analytics-Event-Ids`` (our sink: one id per
event, in body order). A sender that sends no ids (codex itself) gets ids derived from its
``Idempotency-Key`` and the event's position, else from the event's bytes (``sha256:…``), so a
resent batch is still stored once.

Limits, chosen like the analytics APIs teams already know (Amplitude: 1 MB and 2,000 events a
batch; Segment: 500 KB a batch, 32 KB an event) with room above what our sink sends (at most
100 events and 256 KiB a batch; codex's turn events are about 2.5 KB):

* the body, after decompression, at most :data:`MAX_BODY_BYTES` (1 MiB), and at most
  :data:`MAX_EVENTS` (1,000) events: over either, 413 and the sender splits the batch;
* one event at most :data:`~..store.MAX_EVENT_BYTES` (64 KiB): over it that event alone is
  refused, the rest of the batch is stored.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Any

import msgspec

from ..store import NotAnEvent, make_row

MAX_BODY_BYTES = 1024 * 1024
MAX_EVENTS = 1000
MAX_ID_CHARS = 200
EVENT_IDS_HEADER = "X-Codex-Rpc-Analytics-Event-Ids"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class BadRequest(Exception):
    """400: the request as a whole is malformed; nothing of it is stored."""


class TooLarge(Exception):
    """413: over a documented limit; the sender should split the batch and resend."""


class Unsupported(Exception):
    """415: a Content-Encoding we do not decode."""


class RefusedEvent(msgspec.Struct, frozen=True):
    index: int
    event_id: str
    reason: str


class ParsedBatch(msgspec.Struct, frozen=True):
    rows: list[tuple[Any, ...]]
    row_indexes: list[int]  # each row's position in the body
    refused: list[RefusedEvent]


class _Body(msgspec.Struct):
    events: list[msgspec.Raw]


_body_decoder = msgspec.json.Decoder(_Body)


def decode_body(raw: bytes, content_encoding: str | None) -> bytes:
    """The body as JSON bytes: decompressed within :data:`MAX_BODY_BYTES`, never beyond (a
    small gzip bomb cannot make the collector inflate gigabytes)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        if len(raw) > MAX_BODY_BYTES:
            raise TooLarge(f"body over {MAX_BODY_BYTES} bytes")
        return raw
    if encoding == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    else:
        raise Unsupported(f"Content-Encoding {encoding!r}: send gzip, deflate or identity")
    try:
        body = inflater.decompress(raw, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise BadRequest(f"body is not valid {encoding}: {exc}") from None
    if len(body) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise TooLarge(f"body over {MAX_BODY_BYTES} bytes after decompression")
    if not inflater.eof:
        raise BadRequest(f"body is truncated {encoding}")
    return body


def event_ids(header: str | None, idempotency_key: str | None,
              events: list[msgspec.Raw]) -> list[str]:
    if header is not None:
        ids = [part.strip() for part in header.split(",")] if header.strip() else []
        if len(ids) != len(events):
            raise BadRequest(f"{EVENT_IDS_HEADER} lists {len(ids)} ids for {len(events)} events")
        if any(not i or len(i) > MAX_ID_CHARS for i in ids):
            raise BadRequest(f"{EVENT_IDS_HEADER}: every id must be 1-{MAX_ID_CHARS} characters")
        return ids
    key = (idempotency_key or "").strip()
    if key and len(key) <= MAX_ID_CHARS - 8:
        return [f"{key}#{i}" for i in range(len(events))]
    return ["sha256:" + hashlib.sha256(bytes(e)).hexdigest() for e in events]


def parse_batch(
    body: bytes,
    *,
    ids_header: str | None,
    idempotency_key: str | None,
    source: str,
    received_at_ms: int,
) -> ParsedBatch:
    """Rows for every storable event of a decoded body; the others refused with a reason."""
    try:
        decoded = _body_decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise BadRequest(f'body must be {{"events":[...]}}: {exc}') from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    events = decoded.events
    if len(events) > MAX_EVENTS:
        raise TooLarge(f"{len(events)} events in one request, over the limit of {MAX_EVENTS}")
    ids = event_ids(ids_header, idempotency_key, events)
    rows: list[tuple[Any, ...]] = []
    row_indexes: list[int] = []
    refused: list[RefusedEvent] = []
    for index, (event_id, raw) in enumerate(zip(ids, events, strict=True)):
        try:
            rows.append(make_row(source, event_id, bytes(raw), received_at_ms))
            row_indexes.append(index)
        except NotAnEvent as exc:
            refused.append(RefusedEvent(index, event_id, str(exc)))
    return ParsedBatch(rows, row_indexes, refused)
