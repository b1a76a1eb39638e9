"""The collector: an aiohttp server that stores what many developers' proxies ship, once.

Routes:

* ``POST …/codex/analytics-events/events`` (any prefix: ``/``, ``/backend-api/`` …): a batch.
  ``Authorization: Bearer <ingest token>`` is checked before the body is read.
  200 ``{"accepted":N,"duplicates":D,"rejected":[{"index","event_id","reason"}]}`` once the
  stored events are committed (refused events are listed and not retried: OTLP's partial
  success); 400 with ``{"error":…}`` for a malformed request (nothing stored); 401 without a
  valid token; 413 over a limit (:mod:`.batch`); 415 for an unknown Content-Encoding; 503 with
  ``Retry-After`` while the store is unreachable, or refuses every write whatever the data
  (read-only, a revoked privilege: :class:`~..store.StoreRefusing`); nothing is acknowledged
  then and the sender keeps the batch. Only rows the store blames on their data are listed
  in ``rejected``.
* ``GET /livez``: 200 while the process serves. ``GET /readyz``: 200 when the store answers,
  else 503. Both unauthenticated and never logged.
* ``GET /``: the live dashboard (the report), mounted by :func:`.run.serve` from
  ``report/web.py``, for read tokens only.

Nothing a request carries is logged: no access log (it would hold client addresses only, but
a proxy in front may put tokens in URLs), and errors name the fault, never a header.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import msgspec
from aiohttp import web

from ..store import COLUMN_NAMES, EventStore, StoreError, StoreRefusing, StoreUnavailable
from .batch import (
    EVENT_IDS_HEADER,
    IDEMPOTENCY_HEADER,
    MAX_BODY_BYTES,
    BadRequest,
    RefusedEvent,
    TooLarge,
    Unsupported,
    decode_body,
    parse_batch,
)
from .tokens import TokenBook, bearer_token

EVENTS_SUFFIX = "/codex/analytics-events/events"
RETRY_AFTER_S = 2
MAX_FIELD_BYTES = 64 * 1024


class IngestAnswer(msgspec.Struct, frozen=True):
    """The 200 body: what was stored, what was already there, what was refused and why."""

    accepted: int
    duplicates: int
    rejected: list[RefusedEvent]


_encode = msgspec.json.Encoder().encode
_EVENT_ID = COLUMN_NAMES.index("event_id")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class Collector:
    def __init__(
        self,
        store: EventStore,
        tokens: TokenBook,
        *,
        logger: logging.Logger,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self._logger = logger
        self._clock = clock
        self._store_down = False
        self._store_refusing = False

    def app(self) -> web.Application:
        # The body is inflated by decode_body, within the limit, not by aiohttp (which would
        # inflate a gzip bomb in full): so client_max_size bounds the body as sent. The id
        # list of a 1,000-event batch (about 37 KB) must fit in one header field.
        app = web.Application(
            client_max_size=MAX_BODY_BYTES,
            handler_args={"auto_decompress": False, "max_field_size": MAX_FIELD_BYTES,
                          "max_line_size": MAX_FIELD_BYTES},
        )
        app.router.add_get("/livez", self.livez)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_post("/{path:.*}", self.post_events)
        return app

    async def livez(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        try:
            await self.store.ping()
        except StoreError as exc:
            self._note_store_down(exc)
            return web.json_response({"status": "store unavailable"}, status=503,
                                     headers={"Retry-After": str(RETRY_AFTER_S)})
        self._note_store_up()
        return web.json_response({"status": "ready"})

    async def post_events(self, request: web.Request) -> web.Response:
        if not request.path.endswith(EVENTS_SUFFIX):
            return _error(404, f"not found: POST to …{EVENTS_SUFFIX}")
        token = bearer_token(request.headers.get("Authorization"))
        source = self.tokens.source_of(token) if token is not None else None
        if source is None:
            return _error(401, "an ingest token is required: Authorization: Bearer <token>",
                          {"WWW-Authenticate": 'Bearer realm="codex-rpc-analytics"'})
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes: split the batch")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body over {MAX_BODY_BYTES} bytes: split the batch")
        try:
            body = decode_body(raw, request.headers.get("Content-Encoding"))
            batch = parse_batch(
                body,
                ids_header=request.headers.get(EVENT_IDS_HEADER),
                idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
                source=source,
                received_at_ms=int(self._clock() * 1000),
            )
        except TooLarge as exc:
            return _error(413, f"{exc}: split the batch")
        except Unsupported as exc:
            return _error(415, str(exc))
        except BadRequest as exc:
            return _error(400, str(exc))
        try:
            result = await self.store.ingest(batch.rows)
        except StoreRefusing as exc:
            self._note_store_refusing(exc)
            return _error(503, "the store refuses writes; nothing was acknowledged: retry",
                          {"Retry-After": str(RETRY_AFTER_S)})
        except StoreUnavailable as exc:
            self._note_store_down(exc)
            return _error(503, "the store is unavailable; nothing was acknowledged: retry",
                          {"Retry-After": str(RETRY_AFTER_S)})
        except StoreError as exc:  # e.g. came up migrated by a newer collector: say why
            self._logger.error("cannot store events: %s", exc)
            return _error(500, "the store cannot take events; nothing was acknowledged")
        self._note_store_up()
        if self._store_refusing:
            self._store_refusing = False
            self._logger.warning("store accepts writes again")
        refused = [*batch.refused, *(
            # Rows the store itself refused, by their position in the body.
            RefusedEvent(batch.row_indexes[r.index], batch.rows[r.index][_EVENT_ID], r.reason)
            for r in result.rejected
        )]
        answer = IngestAnswer(result.inserted, result.duplicates,
                              sorted(refused, key=lambda r: r.index))
        self._logger.debug("%s: stored %d events, %d duplicates, %d refused", source,
                           result.inserted, result.duplicates, len(refused))
        return web.Response(body=_encode(answer), content_type="application/json")

    def _note_store_down(self, exc: StoreError) -> None:
        if not self._store_down:
            self._store_down = True
            self._logger.warning("store unavailable, answering 503 until it is back: %s", exc)

    def _note_store_refusing(self, exc: StoreRefusing) -> None:
        # An operator must act (read-only database, revoked privilege): an error, said once.
        if not self._store_refusing:
            self._store_refusing = True
            self._logger.error("store refuses writes, answering 503 until it accepts them "
                               "(senders keep their events): %s", exc)

    def _note_store_up(self) -> None:
        if self._store_down:
            self._store_down = False
            self._logger.warning("store reachable again")
