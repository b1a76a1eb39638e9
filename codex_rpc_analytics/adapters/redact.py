"""``--redact``: user content out of a recorded line; every value analytics reads kept.

What is kept is decided by a value's *place in the protocol*: which message it is in (request,
notification or answer, its method, its direction) and its path inside that message, never by
a key name found anywhere. The places are exactly the members the core's typed views decode
(core/views.py): the shapes below are built from those structs, so analytics and redaction
cannot drift apart, and a redacted recording replays to the same events (tested on every
recorded session).

* Inside a place analytics reads, a value is kept as it is: ids, methods, models, statuses,
  token counts, tool names, the server-written ``source`` and ``codexErrorInfo`` objects.
  Where analytics reads only part of a value, only that part is kept: a thread's ``preview``,
  a web search's query, an image's prompt and saved path and a moved file's new path keep only
  whether they are empty; a turn error's ``message`` only codex's fixed prefix
  (``error_kinds.redact_error_message``); a diff only its line markers; an inline image only
  its size (a PNG header of the same size); an approval decision only its name; a thread
  request's ``config`` only ``model_reasoning_summary``. A JSON-RPC error's ``message`` is kept
  only when it is one of the app-server's fixed texts that classify a steer rejection (a known
  prefix keeps only the prefix), its ``data`` only its ``input_error_code`` and
  ``codexErrorInfo``.
* Everywhere else (tool-call arguments, message text, command output, file contents, paths,
  tokens, anything under an unknown method, whatever a client writes in its own answers and
  errors): a non-empty string becomes ``"[redacted]"`` and a non-empty object becomes
  ``"[redacted]"`` whole, keys included (they may be user content too). Numbers, booleans,
  nulls, empty strings and every array's length are kept.
* Member names are kept where the protocol defines them (the objects analytics reads); one
  that does not look like a protocol name (camelCase) is replaced too.
* Answers are matched to their requests (by direction and id), as the tap does, so a
  ``thread/start`` result is read as one and any other result is all placeholder.
* A line that is not JSON becomes a fixed non-JSON placeholder.

The redacted line is re-encoded compactly, so it is not byte-identical to the original even
where nothing was redacted (number spelling, escapes); what it means to analytics is.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from collections import OrderedDict
from typing import Any

import msgspec
import msgspec.inspect as mi

from ..core import item_views, views
from ..core.error_kinds import redact_error_message
from ..core.images import data_url_size

PLACEHOLDER = "[redacted]"
NOT_JSON_PLACEHOLDER = b"[redacted: a line that was not JSON]"

# The messages analytics reads, and the view(s) of each: the tap's tables (core/tap.py; a
# test keeps the two in step). Client requests, their results; server requests (approvals),
# the client's answers; server notifications.
REQUEST_PARAMS: dict[str, tuple[type[Any], ...]] = {
    "initialize": (views.InitializeParams,),
    "thread/start": (views.ThreadRequestParams,),
    "thread/resume": (views.ThreadRequestParams,),
    "thread/fork": (views.ThreadRequestParams,),
    "turn/start": (views.TurnStartParams,),
    "turn/steer": (views.SteerParams,),
    "turn/interrupt": (views.InterruptParams,),
    "review/start": (views.ThreadTaskParams,),
    "thread/compact/start": (views.ThreadTaskParams,),
    "thread/queue/add": (views.QueueParams,),
    "thread/queue/delete": (views.QueueParams,),
    "thread/queue/start": (views.QueueParams,),
}
RESULTS: dict[str, tuple[type[Any], ...]] = {
    "initialize": (views.InitializeResult,),
    "thread/start": (views.ThreadResult,),
    "thread/resume": (views.ThreadResult,),
    "thread/fork": (views.ThreadResult,),
    "turn/start": (views.TurnStartResult,),
    "turn/steer": (views.SteerResult,),
    "review/start": (views.TurnStartResult,),
    "thread/compact/start": (views.TurnStartResult,),
    "thread/queue/add": (views.QueueResult,),
    "thread/queue/delete": (views.QueueResult,),
    "thread/queue/start": (views.QueueResult,),
}
SERVER_REQUEST_PARAMS: dict[str, tuple[type[Any], ...]] = {
    "item/commandExecution/requestApproval": (views.ApprovalRequestParams,),
    "item/fileChange/requestApproval": (views.ApprovalRequestParams,),
}
CLIENT_RESULTS: dict[str, tuple[type[Any], ...]] = {
    method: (views.ApprovalAnswer,) for method in SERVER_REQUEST_PARAMS
}
NOTIFICATIONS: dict[str, tuple[type[Any], ...]] = {
    "thread/started": (views.ThreadNotification,),
    "turn/started": (views.TurnNotification,),
    "turn/completed": (views.TurnNotification,),
    "thread/tokenUsage/updated": (views.TokenUsageNotification,),
    "item/completed": (views.ItemNotification, item_views.ToolItemNotification),
    "item/started": (views.ItemNotification,),
    "turn/diff/updated": (item_views.TurnDiffNotification,),
    "thread/archived": (views.ThreadArchiveNotification,),
    "thread/unarchived": (views.ThreadArchiveNotification,),
}

# The app-server's fixed error texts that classify a steer rejection (core/error_kinds.py):
# kept whole, or, for a prefix followed by ids, as the prefix alone.
KNOWN_ERROR_MESSAGES = frozenset({
    "no active turn to steer", "input must not be empty", "cannot steer a review turn",
    "cannot steer a compact turn", "expectedTurnId must not be empty",
})
KNOWN_ERROR_PREFIXES = ("Invalid request:", "expected active turn id")
_ERROR_DATA_KEPT = frozenset({"input_error_code", "codexErrorInfo"})
_PROTOCOL_NAME = re.compile(r"[a-z][A-Za-z0-9]{0,39}")
_MAX_PENDING = 4096


# -- shapes: where a value may be kept -----------------------------------------------------


class _Verbatim:
    """Kept as it is, whatever it holds (server-written metadata such as ``source``)."""


class _Scalar:
    """A string, number, boolean or null kept; anything else redacted."""


class _Emptiness:
    """Only whether it is empty matters: empty kept, anything else redacted."""


class _Redact:
    """Always redacted (content sitting in a place analytics reads)."""


class _Fields:
    def __init__(self, fields: dict[str, Shape]) -> None:
        self.fields = fields


class _Items:
    def __init__(self, item: Shape) -> None:
        self.item = item


class _Values:
    """A map whose keys are ids (``agentsStates``): keys kept, values by their shape."""

    def __init__(self, value: Shape) -> None:
        self.value = value


class _ErrorObject:
    """A JSON-RPC error object (error_kinds.py reads code, message and data)."""


class _Reduced:
    """Only what analytics reads of the value is kept, by a function of it."""

    def __init__(self, reduce: Any) -> None:
        self.reduce = reduce


Shape = (_Verbatim | _Scalar | _Emptiness | _Redact | _Fields | _Items | _Values
         | _ErrorObject | _Reduced)
VERBATIM, SCALAR, EMPTINESS, REDACT, ERROR = (_Verbatim(), _Scalar(), _Emptiness(), _Redact(),
                                              _ErrorObject())


def _turn_error_message(value: Any) -> Any:
    return redact_error_message(value) if isinstance(value, str) else _placeholder(value)


def _diff(value: Any) -> Any:
    return diff_markers(value) if isinstance(value, str) else _placeholder(value)


def _image_url(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("data:"):
        return image_stand_in(value)
    return _placeholder(value)


def _decision(value: Any) -> Any:
    """An approval decision: a name, or a one-member object named for it (its body is the
    user's, e.g. the command patterns of an execpolicy amendment)."""
    if isinstance(value, dict):
        return {name: _placeholder(item) for name, item in value.items()
                if _PROTOCOL_NAME.fullmatch(name)}
    return value if isinstance(value, str) else _placeholder(value)


def _thread_config(value: Any) -> Any:
    """``config`` overrides of a thread request: only the one analytics reads."""
    if not isinstance(value, dict):
        return _placeholder(value)
    summary = value.get("model_reasoning_summary")
    return {"model_reasoning_summary": summary} if isinstance(summary, str) else {}


# Values of the views that are user content, though analytics reads their place.
_CONTENT_FIELDS: dict[tuple[type[Any], str], Shape] = {
    (views.ThreadView, "preview"): EMPTINESS,
    (views.TurnErrorView, "message"): _Reduced(_turn_error_message),
    (views.ThreadRequestParams, "config"): _Reduced(_thread_config),
    (views.UserInputView, "url"): _Reduced(_image_url),
    (views.ApprovalAnswer, "decision"): _Reduced(_decision),
    (item_views.TurnDiffNotification, "diff"): _Reduced(_diff),
    (item_views.ToolItemView, "query"): EMPTINESS,
    (item_views.ToolItemView, "revised_prompt"): EMPTINESS,
    (item_views.ToolItemView, "saved_path"): EMPTINESS,
    (item_views.ToolItemView, "error"): REDACT,  # only whether there is one
    (item_views.WebSearchActionView, "query"): EMPTINESS,
    (item_views.WebSearchActionView, "queries"): REDACT,  # only how many
    (item_views.ChangeKindView, "move_path"): EMPTINESS,
}


def _shape_of(info: mi.Type, owner: type[Any] | None = None, name: str = "") -> Shape:
    override = _CONTENT_FIELDS.get((owner, name)) if owner is not None else None
    if override is not None:
        return override
    if isinstance(info, mi.UnionType):
        meaningful = [t for t in info.types if not isinstance(t, mi.NoneType)]
        if len(meaningful) == 1:
            return _shape_of(meaningful[0], owner, name)
        return VERBATIM if any(isinstance(t, mi.AnyType) for t in meaningful) else SCALAR
    if isinstance(info, mi.StructType):
        if info.cls is views.ErrorObject:
            return ERROR
        return _Fields({field.encode_name: _shape_of(field.type, info.cls, field.name)
                        for field in info.fields})
    if isinstance(info, mi.ListType):
        return _Items(_shape_of(info.item_type))
    if isinstance(info, mi.DictType):
        return _Values(_shape_of(info.value_type))
    if isinstance(info, mi.AnyType):
        return VERBATIM
    if isinstance(info, mi.RawType):
        return EMPTINESS
    return SCALAR


def _merge(first: Shape, second: Shape) -> Shape:
    """Two views of one message (``item/completed`` is decoded twice): what either reads."""
    if isinstance(first, _Fields) and isinstance(second, _Fields):
        fields = dict(first.fields)
        for name, shape in second.fields.items():
            fields[name] = _merge(fields[name], shape) if name in fields else shape
        return _Fields(fields)
    if isinstance(first, _Items) and isinstance(second, _Items):
        return _Items(_merge(first.item, second.item))
    return first


def _shape(views_of: tuple[type[Any], ...]) -> Shape:
    shapes = [_shape_of(mi.type_info(view)) for view in views_of]
    merged = shapes[0]
    for shape in shapes[1:]:
        merged = _merge(merged, shape)
    return merged


def _shapes(table: dict[str, tuple[type[Any], ...]]) -> dict[str, Shape]:
    return {method: _shape(views_of) for method, views_of in table.items()}


_REQUEST_SHAPES = _shapes(REQUEST_PARAMS)
_RESULT_SHAPES = _shapes(RESULTS)
_SERVER_REQUEST_SHAPES = _shapes(SERVER_REQUEST_PARAMS)
_CLIENT_RESULT_SHAPES = _shapes(CLIENT_RESULTS)
_NOTIFICATION_SHAPES = _shapes(NOTIFICATIONS)


# -- applying a shape ----------------------------------------------------------------------


def _placeholder(value: Any) -> Any:
    """A value at a place analytics does not read."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value and PLACEHOLDER
    if isinstance(value, list):
        return [_placeholder(item) for item in value]
    return PLACEHOLDER if value else {}


def _members(value: dict[str, Any], kept: dict[str, Shape]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, item in value.items():
        shape = kept.get(name)
        if shape is not None:
            out[name] = _apply(shape, item)
        elif _PROTOCOL_NAME.fullmatch(name):
            out[name] = _placeholder(item)
        else:  # a name that is not the protocol's may itself be content
            out[f"{PLACEHOLDER}{len(out)}"] = _placeholder(item)
    return out


def _apply(shape: Shape, value: Any) -> Any:
    if shape is VERBATIM:
        return value
    if shape is SCALAR:
        return value if not isinstance(value, dict | list) else _placeholder(value)
    if shape is EMPTINESS:
        return value if value in ("", None, [], {}) else _placeholder(value)
    if shape is REDACT:
        return _placeholder(value)
    if shape is ERROR:
        return _error(value)
    if isinstance(shape, _Fields):
        return _members(value, shape.fields) if isinstance(value, dict) else _placeholder(value)
    if isinstance(shape, _Items):
        if not isinstance(value, list):
            return _placeholder(value)
        return [_apply(shape.item, item) for item in value]
    if isinstance(shape, _Values):
        if not isinstance(value, dict):
            return _placeholder(value)
        return {name: _apply(shape.value, item) for name, item in value.items()}
    if isinstance(shape, _Reduced):
        return shape.reduce(value)
    raise AssertionError(shape)


def _error_message(message: Any) -> Any:
    if isinstance(message, str):
        if message in KNOWN_ERROR_MESSAGES:
            return message
        for prefix in KNOWN_ERROR_PREFIXES:
            if message.startswith(prefix):
                return f"{prefix} {PLACEHOLDER}"
    return _placeholder(message)


def _error(value: Any) -> Any:
    if not isinstance(value, dict):
        return _placeholder(value)
    out = _members(value, {"code": SCALAR})
    if "message" in value:
        out["message"] = _error_message(value["message"])
    data = value.get("data")
    if isinstance(data, dict):
        out["data"] = {name: item if name in _ERROR_DATA_KEPT else _placeholder(item)
                       for name, item in data.items() if _PROTOCOL_NAME.fullmatch(name)
                       or name in _ERROR_DATA_KEPT}
    return out


# -- lines ---------------------------------------------------------------------------------

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


class Redactor:
    """Redacts the lines of one connection, fed in relay order (both directions), so that an
    answer is read as the answer to its request. Not thread-safe: the recorder owns it."""

    def __init__(self) -> None:
        # (direction of the request, its id) -> method, oldest first, bounded.
        self._pending: OrderedDict[tuple[str, Any], str] = OrderedDict()

    def line(self, direction: str, line: bytes) -> bytes:
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
            return _encoder.encode(self._message(direction, doc))
        except RecursionError:
            return NOT_JSON_PLACEHOLDER

    def _message(self, direction: str, doc: Any) -> Any:
        if not isinstance(doc, dict):
            return _placeholder(doc)
        method, request_id = doc.get("method"), doc.get("id")
        if not isinstance(request_id, str | int) or isinstance(request_id, bool):
            request_id = None
        kept: dict[str, Shape] = {"id": SCALAR, "jsonrpc": SCALAR}
        if isinstance(method, str):
            kept["method"] = SCALAR
            shape: Shape | None = None
            if request_id is not None:  # a request (a null id makes a notification)
                self._remember(direction, request_id, method)
                requests = _REQUEST_SHAPES if direction == "c2s" else _SERVER_REQUEST_SHAPES
                shape = requests.get(method)
            elif direction == "s2c":
                shape = _NOTIFICATION_SHAPES.get(method)
            kept["params"] = shape or REDACT
        elif request_id is not None:
            asked = self._pending.pop(("s2c" if direction == "c2s" else "c2s", request_id),
                                      None)
            results = _RESULT_SHAPES if direction == "s2c" else _CLIENT_RESULT_SHAPES
            kept["result"] = (results.get(asked) if asked else None) or REDACT
            kept["error"] = ERROR
        return _members(doc, kept)

    def _remember(self, direction: str, request_id: Any, method: str) -> None:
        key = (direction, request_id)
        self._pending.pop(key, None)
        self._pending[key] = method
        if len(self._pending) > _MAX_PENDING:
            self._pending.popitem(last=False)


def redact_line(line: bytes, direction: str = "s2c") -> bytes:
    """One line on its own (no request to pair an answer with: its result is redacted)."""
    return Redactor().line(direction, line)


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
