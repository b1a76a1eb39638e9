"""The dashboard route on aiohttp's real test server: a page is built once for simultaneous
requests and shared while fresh; other filters get their own."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from codex_rpc_analytics.report.web import FRESH_FOR_S, add_dashboard_routes
from codex_rpc_analytics.store import EventStore, open_reader

TOKEN = "cra_read_test"


class CountingStore(EventStore):
    """A real store that counts the queries it answers (each panel is one)."""

    def __init__(self, store: EventStore) -> None:
        self.store, self.dialect, self.display = store, store.dialect, store.display
        self.queries = 0

    async def fetch(self, sql: str, *params: object) -> list[tuple[object, ...]]:
        self.queries += 1
        return await self.store.fetch(sql, *params)

    async def ingest(self, rows):  # type: ignore[no-untyped-def]
        return await self.store.ingest(rows)

    def payloads(self, types, since_ms):  # type: ignore[no-untyped-def]
        return self.store.payloads(types, since_ms)

    async def ping(self) -> None:
        await self.store.ping()

    async def close(self) -> None:
        await self.store.close()


async def test_pages_are_shared_while_fresh_and_rebuilt_after(sqlite_store: str) -> None:
    store = CountingStore(await open_reader(sqlite_store, None))  # type: ignore[arg-type]
    now = [1_796_200_000.0]
    app = web.Application()
    add_dashboard_routes(app, store, {TOKEN: "lead"}.get, clock=lambda: now[0])
    async with TestClient(TestServer(app)) as client:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        pages = await asyncio.gather(*(client.get("/?since=7d", headers=auth) for _ in range(5)))
        texts = {await page.text() for page in pages}
        assert [p.status for p in pages] == [200] * 5 and len(texts) == 1
        per_build = store.queries
        assert per_build > 0
        now[0] += FRESH_FOR_S / 2
        assert (await client.get("/?since=7d", headers=auth)).status == 200
        assert store.queries == per_build  # still fresh: no query
        assert (await client.get("/?since=1d&client=zed", headers=auth)).status == 200
        assert store.queries == 2 * per_build  # other filters: their own page
        now[0] += FRESH_FOR_S
        assert (await client.get("/?since=7d", headers=auth)).status == 200
        assert store.queries == 3 * per_build  # stale: built again
    await store.close()
