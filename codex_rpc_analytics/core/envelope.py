"""The JSON-RPC "lite" envelope: classify a line without decoding what analytics ignores.

Only ``id`` and ``method`` are decoded; ``params``, ``result`` and ``error`` stay as raw
byte slices (``msgspec.Raw``) that a typed view decodes later, and only for the few
messages analytics reads. Classification follows the server's own precedence
(docs/app-server-protocol.md §2.2): Request, then Notification, then Response, then Error.
Nothing here raises on input: every line gets a kind.
"""

from __future__ import annotations

import enum

import msgspec

RequestId = int | str


class Kind(enum.Enum):
    REQUEST = "request"
    NOTIFICATION = "notification"
    RESPONSE = "response"
    ERROR = "error"
    NOT_JSON = "not_json"
    NOT_ENVELOPE = "not_envelope"


class Envelope(msgspec.Struct):
    """Every envelope member codex uses; unknown members (``trace``, ``emittedAtMs``,
    ``jsonrpc``) are skipped, never rejected, because new ones appear between versions."""

    id: RequestId | None = None
    method: str | None = None
    params: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    result: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    error: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class Message(msgspec.Struct, frozen=True):
    """A classified line. ``envelope`` is ``None`` for the two undecodable kinds."""

    kind: Kind
    envelope: Envelope | None = None


_decoder = msgspec.json.Decoder(Envelope)
# The envelope of one line, for a caller that classifies it itself (the tap's hot path, which
# follows ``classify`` rule for rule without its wrapper objects). Raises
# ``msgspec.ValidationError`` for valid JSON of the wrong shape and another ``ValueError`` (or
# ``RecursionError``) for a line that is not JSON; a str is read as its UTF-8 bytes.
decode_envelope = _decoder.decode
_NOT_JSON = Message(Kind.NOT_JSON)
_NOT_ENVELOPE = Message(Kind.NOT_ENVELOPE)


def classify(line: bytes) -> Message:
    try:
        envelope = _decoder.decode(line)
    except msgspec.ValidationError:
        # Valid JSON of the wrong shape: an array, a float id, a non-string method.
        return _NOT_ENVELOPE
    except (ValueError, RecursionError):
        # Not JSON at all, trailing garbage, invalid UTF-8 in a decoded member (msgspec
        # raises UnicodeDecodeError for that), nesting deeper than the decoder allows.
        return _NOT_JSON
    if envelope.method is not None:
        # A null id is not a request id: the server treats it as a notification.
        if envelope.id is not None:
            return Message(Kind.REQUEST, envelope)
        return Message(Kind.NOTIFICATION, envelope)
    if envelope.id is not None:
        if envelope.result is not msgspec.UNSET:
            return Message(Kind.RESPONSE, envelope)
        if envelope.error is not msgspec.UNSET:
            return Message(Kind.ERROR, envelope)
    return _NOT_ENVELOPE
