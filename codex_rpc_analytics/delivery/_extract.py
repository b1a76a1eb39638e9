"""The few fields of an encoded event that the outbox indexes (for batching and stats).

Decoding a typed subset with msgspec skips every other key, so this costs a few microseconds
per event; the payload itself is stored untouched.
"""

from __future__ import annotations

from typing import Any

import msgspec


class _Client(msgspec.Struct):
    product_client_id: str | None = None


class _Params(msgspec.Struct):
    product_client_id: str | None = None  # skill, app and plugin events carry it flat
    thread_id: str | None = None
    turn_id: str | None = None
    initialization_mode: str | None = None
    status: str | None = None
    app_server_client: _Client | None = None


class _Envelope(msgspec.Struct):
    event_params: _Params | None = None


class EventFields(msgspec.Struct, frozen=True):
    client: str | None = None
    thread_id: str | None = None
    turn_id: str | None = None
    initialization_mode: str | None = None
    status: str | None = None


_EMPTY = EventFields()
_decoder = msgspec.json.Decoder(_Envelope)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _untyped(payload: bytes) -> EventFields:
    # Slow path for events whose keys have other types (some event kinds reuse `status`).
    try:
        doc = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return _EMPTY
    params = doc.get("event_params") if isinstance(doc, dict) else None
    if not isinstance(params, dict):
        return _EMPTY
    client = params.get("app_server_client")
    return EventFields(
        client=(_str(client.get("product_client_id")) if isinstance(client, dict)
                else _str(params.get("product_client_id"))),
        thread_id=_str(params.get("thread_id")),
        turn_id=_str(params.get("turn_id")),
        initialization_mode=_str(params.get("initialization_mode")),
        status=_str(params.get("status")),
    )


def extract_fields(payload: bytes) -> EventFields:
    try:
        env = _decoder.decode(payload)
    except msgspec.ValidationError:
        return _untyped(payload)
    except msgspec.DecodeError:
        return _EMPTY
    params = env.event_params
    if params is None:
        return _EMPTY
    client = params.app_server_client
    return EventFields(
        client=client.product_client_id if client is not None else params.product_client_id,
        thread_id=params.thread_id,
        turn_id=params.turn_id,
        initialization_mode=params.initialization_mode,
        status=params.status,
    )
