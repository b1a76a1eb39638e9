"""The live dashboard: the report served at ``/`` by the collector, behind a read token.

The collector mounts it with :func:`add_dashboard_routes` and hands it an ``authorize``
callable that knows its *read* tokens, which are not its ingest tokens: a token that may write
events may not read the team's figures, and the other way round.

A request authenticates with ``Authorization: Bearer TOKEN``, or with HTTP Basic auth whose
password is the token (any user name), so a browser can open the page: on a 401 it asks for
the token once and keeps it for the session, and the token never appears in a URL or a log.

The page is the ``report`` command's page, built from the same queries. The query string takes
the command's filters (``?since=7d&until=…&client=…&model=…``). Building it costs one query per
panel, so a page is kept for :data:`FRESH_FOR_S` seconds per set of filters, and requests that
arrive while it is being built wait for that build instead of starting their own.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from ..store import EventStore, StoreError, StoreUnavailable, open_store
from .build import build_report
from .page import CSP
from .panels import PARALLEL_QUERIES
from .scope import Scope, parse_moment

FRESH_FOR_S = 30.0
DEFAULT_SINCE_S = 30 * 86400
_MAX_CACHED = 32

#: token -> the reader's name, or None when the token is not a read token.
Authorize = Callable[[str], str | None]

# Errors are plain text; the page also gets the CSP (its <meta> says the same).
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGE_HEADERS = {**HEADERS, "Content-Security-Policy": CSP}
CHALLENGE = 'Basic realm="codex-rpc-analytics dashboard", charset="UTF-8"'


def presented_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer T`` or of Basic auth's password, else None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, colon, password = decoded.partition(":")
        return password if colon and password else None
    return None


def scope_of(request: web.Request, now: float) -> Scope:
    """The page's window and filters from the query string; the ``report`` command's forms
    (one parser, :func:`.scope.parse_moment`), a bad value answered 400 naming it."""
    query = request.query
    moments = {"since": now - DEFAULT_SINCE_S, "until": now}
    for name in moments:
        if name in query:
            try:
                moments[name] = parse_moment(query[name], now)
            except ValueError as error:
                raise web.HTTPBadRequest(text=f"{name}: {error}\n", headers=HEADERS) from None
    since, until = moments["since"], moments["until"]
    if until <= since:
        raise web.HTTPBadRequest(text="until must be later than since\n", headers=HEADERS)
    # Minutes, so that requests within a minute share a cached page.
    return Scope(since_ms=int(since // 60 * 60_000), until_ms=int(-(-until // 60) * 60_000),
                 client=query.get("client") or None, model=query.get("model") or None)


@dataclass
class _Cached:
    built_at: float
    page: asyncio.Future[str] = field(repr=False)


class Dashboard:
    def __init__(self, store: EventStore, authorize: Authorize,
                 clock: Callable[[], float] = time.time, *,
                 sqlite_spec: str | None = None) -> None:
        self.store = store
        self.authorize = authorize
        self.clock = clock
        self._sqlite_spec = sqlite_spec
        self._lanes: list[EventStore] = []
        self._pages: dict[Scope, _Cached] = {}

    async def open(self, app: web.Application | None = None) -> None:
        """A SQLite store is read through read-only connections of the dashboard's own (each
        on its own thread, WAL lets them read while the collector writes), so building a page
        neither waits for ingestion nor holds it up; PostgreSQL shares the store's pool."""
        if self._sqlite_spec is not None and self.store.dialect == "sqlite":
            for _ in range(PARALLEL_QUERIES):
                self._lanes.append(await open_store(self._sqlite_spec, migrate=False))

    async def close(self, app: web.Application | None = None) -> None:
        lanes, self._lanes = self._lanes, []
        for lane in lanes:
            await lane.close()

    async def handle(self, request: web.Request) -> web.Response:
        token = presented_token(request.headers.get("Authorization"))
        if token is None or self.authorize(token) is None:
            return web.Response(status=401, text="a read token is required\n",
                                headers={**HEADERS, "WWW-Authenticate": CHALLENGE})
        scope = scope_of(request, self.clock())
        try:
            page = await self._page(scope)
        except StoreUnavailable:
            return web.Response(status=503, text="the store is unavailable; try again shortly\n",
                                headers={**HEADERS, "Retry-After": "5"})
        except StoreError as exc:
            return web.Response(status=500, text=f"{html.escape(str(exc))}\n", headers=HEADERS)
        return web.Response(text=page, content_type="text/html", charset="utf-8",
                            headers=PAGE_HEADERS)

    async def _page(self, scope: Scope) -> str:
        now = self.clock()
        cached = self._pages.get(scope)
        if cached is None or (cached.page.done() and now - cached.built_at > FRESH_FOR_S):
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            cached = self._pages[scope] = _Cached(now, future)
            self._forget_old()
            try:
                future.set_result(await build_report(self._lanes or self.store, scope,
                                                     live=True, now_ms=int(now * 1000)))
            except asyncio.CancelledError:
                self._pages.pop(scope, None)
                future.cancel()
                raise
            except Exception as exc:
                # Waiters see the failure; the next request tries again.
                self._pages.pop(scope, None)
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
                raise
        return await asyncio.shield(cached.page)

    def _forget_old(self) -> None:
        while len(self._pages) > _MAX_CACHED:
            del self._pages[next(iter(self._pages))]


def add_dashboard_routes(app: web.Application, store: EventStore, authorize: Authorize,
                         clock: Callable[[], float] = time.time, *,
                         sqlite_spec: str | None = None) -> Dashboard:
    """Serve the dashboard at ``GET /`` of ``app`` (the collector's). ``sqlite_spec``: where
    a SQLite ``store`` is, for the dashboard's own read connections."""
    dashboard = Dashboard(store, authorize, clock, sqlite_spec=sqlite_spec)
    app.router.add_get("/", dashboard.handle)
    app.on_startup.append(dashboard.open)
    app.on_cleanup.append(dashboard.close)
    return dashboard
