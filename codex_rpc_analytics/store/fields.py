"""From one encoded event to one row of the query schema (:data:`.schema.COLUMNS`).

The fast path decodes a typed subset of the event with msgspec, which skips every other key (a
few microseconds for a 2.5 KB turn event). An event whose keys have other types than ours
(codex adds events, and some reuse a name) takes the slow path: a plain decode, each value kept
only when its type fits. Nothing is rejected for what it carries, only for not being an event
at all (:class:`NotAnEvent`): unknown event types are stored like any other.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from .schema import COLUMN_NAMES

# What PostgreSQL's BIGINT holds; a larger JSON number fails the typed decode, and the slow
# path then leaves that column NULL (the payload keeps the number).
_INT64 = (-(2**63), 2**63 - 1)
Int64 = Annotated[int, msgspec.Meta(ge=_INT64[0], le=_INT64[1])]
MAX_EVENT_BYTES = 64 * 1024


class NotAnEvent(ValueError):
    """The reason one event of a batch cannot be stored; the rest of the batch still is."""


# gc=False on these typed views: they never hold a cycle (strings, numbers and each other), so
# the cycle collector need not track the ~400 of them a 100-event batch makes; tracked, they
# made it run every few requests and cost ~5 % of a collector's CPU.
class _Client(msgspec.Struct, gc=False):
    product_client_id: str | None = None
    client_version: str | None = None


class _Runtime(msgspec.Struct, gc=False):
    codex_rs_version: str | None = None
    runtime_os: str | None = None


class _Params(msgspec.Struct, gc=False):
    # In the order codex writes a turn event's keys: msgspec looks a key up starting from the
    # field after the last one matched, so keys in field order are found at the first try.
    thread_id: str | None = None
    turn_id: str | None = None
    app_server_client: _Client | None = None
    runtime: _Runtime | None = None
    ephemeral: bool | None = None
    thread_source: str | None = None
    initialization_mode: str | None = None
    subagent_source: str | None = None
    parent_thread_id: str | None = None
    model: str | None = None
    model_provider: str | None = None
    sandbox_policy: str | None = None
    reasoning_effort: str | None = None
    service_tier: str | None = None
    approval_policy: str | None = None
    collaboration_mode: str | None = None
    is_first_turn: bool | None = None
    status: str | None = None
    explicit_client_interrupt_requested_at_ms: Int64 | None = None
    codex_error_kind: str | None = None
    codex_error_http_status_code: Int64 | None = None
    steer_count: Int64 | None = None
    total_tool_call_count: Int64 | None = None
    shell_command_count: Int64 | None = None
    file_change_count: Int64 | None = None
    mcp_tool_call_count: Int64 | None = None
    dynamic_tool_call_count: Int64 | None = None
    subagent_tool_call_count: Int64 | None = None
    web_search_count: Int64 | None = None
    image_generation_count: Int64 | None = None
    input_tokens: Int64 | None = None
    cached_input_tokens: Int64 | None = None
    output_tokens: Int64 | None = None
    reasoning_output_tokens: Int64 | None = None
    total_tokens: Int64 | None = None
    duration_ms: Int64 | None = None
    # Moments, each in its event's unit (see occurred_at_ms).
    started_at: Int64 | None = None
    completed_at: Int64 | None = None
    created_at: Int64 | None = None
    occurred_at_ms: Int64 | None = None
    # Keys of other event types.
    product_client_id: str | None = None
    model_slug: str | None = None
    result: str | None = None
    rejection_reason: str | None = None
    connector_id: str | None = None
    app_name: str | None = None
    plugin_id: str | None = None
    remote_plugin_id: str | None = None
    invoke_type: str | None = None
    action: str | None = None


class _Event(msgspec.Struct, gc=False):
    event_type: str
    event_params: _Params | None = None
    skill_name: str | None = None


_typed = msgspec.json.Decoder(_Event)
_params_fields = _Params.__struct_fields__


def _decode(payload: bytes) -> _Event:
    """The typed view of an event, through the slow path when a key has an unexpected type."""
    try:
        return _typed.decode(payload)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise NotAnEvent(f"not valid JSON: {exc}") from None
    doc = msgspec.json.decode(payload)
    if not isinstance(doc, dict):
        raise NotAnEvent("an event must be a JSON object")
    event_type = doc.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise NotAnEvent("event_type is missing or not a non-empty string")
    params = doc.get("event_params")
    if params is not None and not isinstance(params, dict):
        raise NotAnEvent("event_params is not a JSON object")
    skill_name = doc.get("skill_name")
    return _Event(
        event_type=event_type,
        event_params=_loose_params(params) if params is not None else None,
        skill_name=skill_name if isinstance(skill_name, str) else None,
    )


def _loose_params(params: dict[str, Any]) -> _Params:
    """Keep each known key whose value has the expected type; drop the others."""
    kept: dict[str, Any] = {}
    for name in _params_fields:
        if name not in params:
            continue
        try:
            kept[name] = getattr(msgspec.convert({name: params[name]}, _Params), name)
        except msgspec.ValidationError:
            continue
    return _Params(**kept)


def _int(value: int | None) -> int | None:
    if value is None or not (_INT64[0] <= value <= _INT64[1]):
        return None
    return value


def occurred_at_ms(event_type: str, p: _Params, received_at_ms: int) -> int:
    """When the event happened, in Unix ms: its own moment where it carries one.

    * ``codex_turn_event``: ``completed_at`` (s), else ``started_at`` (never completed);
    * ``codex_turn_steer_event``: ``created_at`` (s), when the steer was requested;
    * ``codex_thread_initialized``: ``created_at`` (s) for ``new`` and ``forked`` threads; a
      resumed thread's ``created_at`` is the original creation, so it takes the receive time;
    * ``codex_thread_archive_event``: ``occurred_at_ms``;
    * anything else (skills, apps, plugins, unknown types): the receive time.
    """
    moment: int | None = None
    if event_type == "codex_turn_event":
        seconds = p.completed_at or p.started_at
        moment = seconds * 1000 if seconds else None
    elif event_type == "codex_turn_steer_event":
        moment = p.created_at * 1000 if p.created_at else None
    elif event_type == "codex_thread_initialized":
        if p.initialization_mode in ("new", "forked") and p.created_at:
            moment = p.created_at * 1000
    elif event_type == "codex_thread_archive_event":
        moment = p.occurred_at_ms
    moment = _int(moment)
    return moment if moment is not None and moment > 0 else received_at_ms


def make_row(
    source: str, event_id: str, payload: bytes, received_at_ms: int
) -> tuple[Any, ...]:
    """The row for one event, in :data:`.schema.COLUMNS` order; payload kept as text.

    Raises :class:`NotAnEvent` for what cannot be stored: not a JSON object with a string
    ``event_type``, larger than :data:`MAX_EVENT_BYTES`, or holding a NUL character (which
    neither PostgreSQL's TEXT nor its JSON can store).
    """
    if len(payload) > MAX_EVENT_BYTES:
        raise NotAnEvent(f"event is {len(payload)} bytes, over the limit of {MAX_EVENT_BYTES}")
    event = _decode(payload)
    # rfind: its scan skips on the rare backslash, where `in` skips on the common "0" (5x slower).
    if payload.rfind(b"\\u0000") != -1 and _has_nul(msgspec.json.decode(payload)):
        raise NotAnEvent("event contains a NUL character (\\u0000), which cannot be stored")
    p = event.event_params or _EMPTY
    client = p.app_server_client
    runtime = p.runtime
    plugin = p.plugin_id or p.remote_plugin_id
    row = (
        source,
        event_id,
        event.event_type,
        occurred_at_ms(event.event_type, p, received_at_ms),
        received_at_ms,
        client.product_client_id if client is not None else p.product_client_id,
        client.client_version if client is not None else None,
        runtime.codex_rs_version if runtime is not None else None,
        runtime.runtime_os if runtime is not None else None,
        p.thread_id,
        p.turn_id,
        p.parent_thread_id,
        p.thread_source,
        p.subagent_source,
        p.initialization_mode,
        p.ephemeral,
        p.model or p.model_slug,
        p.model_provider,
        p.status,
        p.is_first_turn,
        p.codex_error_kind,
        p.codex_error_http_status_code,
        p.duration_ms,
        p.explicit_client_interrupt_requested_at_ms,
        p.steer_count,
        p.input_tokens,
        p.cached_input_tokens,
        p.output_tokens,
        p.reasoning_output_tokens,
        p.total_tokens,
        p.total_tool_call_count,
        p.shell_command_count,
        p.file_change_count,
        p.mcp_tool_call_count,
        p.dynamic_tool_call_count,
        p.subagent_tool_call_count,
        p.web_search_count,
        p.image_generation_count,
        p.sandbox_policy,
        p.approval_policy,
        p.reasoning_effort,
        p.service_tier,
        p.collaboration_mode,
        p.result if event.event_type == "codex_turn_steer_event" else None,
        p.rejection_reason,
        event.skill_name,
        p.connector_id,
        p.app_name,
        plugin,
        p.invoke_type,
        p.action if event.event_type == "codex_thread_archive_event" else None,
        payload.decode("utf-8"),
    )
    assert len(row) == len(COLUMN_NAMES)
    return row


_EMPTY = _Params()


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
