"""``--redact``: user content out of a recorded line, every field analytics reads kept.

The rule is an allowlist, so that a member codex adds tomorrow is redacted rather than leaked:

* Object keys, numbers, booleans, nulls and the shape of every array and object are kept
  (analytics counts items and reads token usage, timestamps and durations).
* A string is kept verbatim only under a key that names an identifier or an enumeration
  (``id``, ``threadId``, ``method``, ``type``, ``status``, ``model`` ...; see ``KEEP_KEYS``),
  anywhere inside a subtree that is metadata by construction (``clientInfo``,
  ``codexErrorInfo``, ``source`` ...; ``KEEP_SUBTREES``), or inside the top-level ``error``
  object of a JSON-RPC error (server-written; analytics classifies steer rejections by its
  ``message`` and ``data``).
* Every other non-empty string (message text, file contents, command output, paths, tokens
  and secrets, base64 blobs) becomes ``"[redacted]"``; an empty string stays empty,
  because emptiness is information analytics uses (a thread's ``preview``). Three are
  reduced rather than replaced, keeping just what analytics reads: a turn error's message
  (codex's fixed texts tell error kinds apart; an API's answer becomes ``{}``), a diff (its
  ``+``/``-`` line markers) and an inline image (a PNG header of the same size).
* A line that is not JSON (foreign output, invalid UTF-8) becomes a fixed non-JSON
  placeholder: it told analytics nothing either way.

The redacted line is re-encoded compactly, so it is not byte-identical to the original even
where nothing was redacted (number spelling, escapes); what it means to analytics is.
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import msgspec

from ..core.error_kinds import redact_error_message
from ..core.images import data_url_size

PLACEHOLDER = "[redacted]"
NOT_JSON_PLACEHOLDER = b"[redacted: a line that was not JSON]"

# String values kept wherever these keys appear: identifiers and enumerations, never content.
KEEP_KEYS = frozenset({
    # envelope and ids
    "id", "method", "jsonrpc", "threadId", "turnId", "itemId", "requestId", "callId",
    "sessionId", "conversationId", "forkedFromId", "parentThreadId", "rootTurnId",
    "expectedTurnId", "environmentId",
    # enumerations and configuration analytics reports
    "type", "status", "kind", "role", "phase", "mode", "model", "modelProvider",
    "reasoningEffort", "effort", "serviceTier", "serviceTierForTurn", "approvalPolicy",
    "approvalsReviewer", "personality", "threadSource", "originator", "turnTrigger",
    "networkAccess", "itemsView", "cliVersion", "reasoning_effort", "decision",
    # the initialize result: who the server is
    "userAgent", "platformOs", "platformFamily",
    # tool items: what a tool event reports of them (names and ids, never arguments or output)
    "source", "tool", "server", "namespace", "pluginId", "scriptPath", "generationId",
    "connectorId", "agentThreadId", "senderThreadId", "receiverThreadIds",
    "queuedSubmissionId", "clientUserMessageId",
})

# Whole subtrees that are metadata: every string inside is kept.
KEEP_SUBTREES = frozenset({"clientInfo", "capabilities", "codexErrorInfo", "source"})

# ``summary`` is a reasoning-summary setting in turn/start but free text elsewhere.
_SUMMARY_SETTINGS = frozenset({"auto", "concise", "detailed", "none"})
_SUMMARY_KEYS = frozenset({"summary", "model_reasoning_summary"})

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def redact_line(line: bytes) -> bytes:
    """The redacted form of one protocol line (no trailing newline in or out)."""
    try:
        doc = _decoder.decode(line)
    except UnicodeDecodeError:
        try:
            doc = _decoder.decode(line.decode("utf-8", "replace").encode())
        except (ValueError, RecursionError):
            return NOT_JSON_PLACEHOLDER
    except (ValueError, RecursionError):
        return NOT_JSON_PLACEHOLDER
    try:
        return _encoder.encode(_redact(doc, None))
    except RecursionError:
        return NOT_JSON_PLACEHOLDER


def _redact(value: Any, key: str | None) -> Any:
    if isinstance(value, str):
        if not value or key in KEEP_KEYS:
            return value
        if key in _SUMMARY_KEYS and value in _SUMMARY_SETTINGS:
            return value
        if key == "diff":
            return diff_markers(value)
        if key == "url" and value.startswith("data:"):
            return image_stand_in(value)
        return PLACEHOLDER
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name in KEEP_SUBTREES or (name == "error" and key is None):
                out[name] = item
            elif (name == "message" and isinstance(item, str)
                  and "codexErrorInfo" in value):
                # A turn error's message: codex's own fixed texts tell error kinds apart.
                out[name] = redact_error_message(item)
            else:
                out[name] = _redact(item, name)
        return out
    if isinstance(value, list):
        # A list's strings are judged by the key that holds the list.
        return [_redact(item, key) for item in value]
    return value


def diff_markers(diff: str) -> str:
    """A unified diff reduced to its line markers: the lines it adds and deletes are still
    countable, their text is gone."""
    marks = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            marks.append(line[:3])
        elif line.startswith(("+", "-")):
            marks.append(line[0])
        else:
            marks.append("")
    return "\n".join(marks)


def image_stand_in(url: str) -> str:
    """An inline image replaced by a PNG header of the same size (all image_preparations
    reads), or the placeholder when its size cannot be read."""
    size = data_url_size(url)
    if size is None:
        return PLACEHOLDER
    header = struct.pack(">IIBBBBB", size[0], size[1], 8, 0, 0, 0, 0)
    chunk = (struct.pack(">I", len(header)) + b"IHDR" + header
             + struct.pack(">I", zlib.crc32(b"IHDR" + header) & 0xFFFFFFFF))
    return "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk).decode()


def redact_argv(argv: list[str]) -> list[str]:
    """argv for a redacted recording: the program, flags and plain words stay; values that
    could carry a secret (``-c key=value``, paths, URLs) are replaced."""
    kept: list[str] = []
    for index, arg in enumerate(argv):
        plain = arg.replace("-", "").replace("_", "").isalnum()
        if index == 0 or (arg.startswith("-") and "=" not in arg) or plain:
            kept.append(arg)
        else:
            kept.append(PLACEHOLDER)
    return kept
