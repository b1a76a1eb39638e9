"""The collector's HTTP face on aiohttp's real test server, over a real store (SQLite and
PostgreSQL): auth, limits, per-event rejects, faults, health."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from codex_rpc_analytics.collector import (
    MAX_BODY_BYTES,
    MAX_EVENTS,
    Collector,
    TokenBook,
    add_token,
)
from codex_rpc_analytics.store import EventStore, open_store
from tests.pgserver import PgServer
from tests.support import replayed_events

EVENTS = replayed_events()
PATH = "/codex/analytics-events/events"
IDS = "X-Codex-Rpc-Analytics-Event-Ids"


def body(events: list[bytes]) -> bytes:
    return b'{"events":[' + b",".join(events) + b"]}"


@dataclass
class Running:
    client: TestClient[Any, Any]
    store: EventStore
    tokens_file: Path
    token: str

    def headers(self, ids: list[str] | None = None, token: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token or self.token}",
                   "Content-Type": "application/json"}
        if ids is not None:
            headers[IDS] = ",".join(ids)
        return headers

    async def post(self, events: list[bytes], ids: list[str] | None = None,
                   **kwargs: Any) -> tuple[int, Any]:
        headers = kwargs.pop("headers", None) or self.headers(ids)
        data = kwargs.pop("data", None) or body(events)
        async with self.client.post(PATH, data=data, headers=headers, **kwargs) as response:
            return response.status, await response.json()

    async def count(self) -> int:
        return int((await self.store.fetch("SELECT COUNT(*) FROM events"))[0][0])


@pytest.fixture(params=["sqlite", "postgresql"])
async def running(request: pytest.FixtureRequest, tmp_path: Path,
                  aiohttp_client: Any) -> AsyncIterator[Running]:
    spec = (str(tmp_path / "team.sqlite3") if request.param == "sqlite"
            else str(request.getfixturevalue("pg_dsn")))
    tokens_file = tmp_path / "tokens"
    token = add_token(tokens_file, "alice")
    store = await open_store(spec, migrate=True, wait=False)
    logger = logging.getLogger("test.collector")
    collector = Collector(store, TokenBook(tokens_file, logger), logger=logger)
    client = await aiohttp_client(collector.app())
    try:
        yield Running(client, store, tokens_file, token)
    finally:
        await store.close()


async def test_a_batch_is_stored_once_and_resends_are_duplicates(running: Running) -> None:
    ids = [f"id-{i}" for i in range(len(EVENTS))]
    status, answer = await running.post(EVENTS, ids)
    assert (status, answer) == (200, {"accepted": len(EVENTS), "duplicates": 0, "rejected": []})
    status, answer = await running.post(EVENTS, ids)
    assert (status, answer) == (200, {"accepted": 0, "duplicates": len(EVENTS), "rejected": []})
    assert await running.count() == len(EVENTS)
    sources = await running.store.fetch("SELECT DISTINCT source FROM events")
    assert sources == [("alice",)]


async def test_requests_without_a_valid_ingest_token_are_refused(running: Running) -> None:
    for headers in ({}, {"Authorization": "Bearer cra_ingest_wrong"},
                    {"Authorization": f"Basic {running.token}"},
                    {"Authorization": "Bearer "}):
        async with running.client.post(PATH, data=body(EVENTS), headers=headers) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "ingest token" in (await response.json())["error"]
    assert await running.count() == 0


async def test_the_tokens_file_is_reloaded_without_restart(running: Running) -> None:
    bob = add_token(running.tokens_file, "bob")  # while the collector runs
    status, _ = await running.post(EVENTS[:1], ["e1"], headers=running.headers(["e1"], bob))
    assert status == 200
    # Revoke alice by deleting her line.
    lines = running.tokens_file.read_text().splitlines(keepends=True)
    running.tokens_file.write_text("".join(line for line in lines
                                           if not line.startswith("alice ")))
    status, _ = await running.post(EVENTS[:1], ["e2"])
    assert status == 401
    status, _ = await running.post(EVENTS[1:2], ["e3"], headers=running.headers(["e3"], bob))
    assert status == 200
    assert await running.store.fetch("SELECT source, event_id FROM events ORDER BY seq") == [
        ("bob", "e1"), ("bob", "e3")]


async def test_a_bad_event_is_refused_alone(running: Running) -> None:
    batch = [EVENTS[0], b'"not an event"', EVENTS[1], b'{"event_params":{}}', EVENTS[2]]
    status, answer = await running.post(batch, ["a", "b", "c", "d", "e"])
    assert status == 200
    assert answer["accepted"] == 3 and answer["duplicates"] == 0
    assert [(r["index"], r["event_id"]) for r in answer["rejected"]] == [(1, "b"), (3, "d")]
    assert "JSON object" in answer["rejected"][0]["reason"]
    assert "event_type" in answer["rejected"][1]["reason"]
    assert [r[0] for r in await running.store.fetch(
        "SELECT event_id FROM events ORDER BY seq")] == ["a", "c", "e"]


@pytest.mark.parametrize(
    ("data", "ids", "message"),
    [
        (b'{"events":[', None, "not valid JSON"),
        (b'{"evens":[]}', None, "events"),
        (b'[{"event_type":"x"}]', None, "events"),
        (body(EVENTS[:2]), "only-one", "lists 1 ids for 2 events"),
        (body(EVENTS[:2]), "a,", "every id"),
    ],
)
async def test_a_malformed_request_is_400_and_stores_nothing(
    running: Running, data: bytes, ids: str | None, message: str
) -> None:
    headers = running.headers()
    if ids is not None:
        headers[IDS] = ids
    status, answer = await running.post([], data=data, headers=headers)
    assert status == 400 and message in answer["error"]
    assert await running.count() == 0


async def test_over_the_limits_is_413(running: Running) -> None:
    big = body([b'{"event_type":"x","pad":"' + b"x" * 60000 + b'"}'] * 20)
    assert len(big) > MAX_BODY_BYTES
    status, answer = await running.post([], data=big)
    assert status == 413 and "split" in answer["error"]
    many = [b'{"event_type":"x"}'] * (MAX_EVENTS + 1)
    status, answer = await running.post(many, [f"i{i}" for i in range(len(many))])
    assert status == 413 and str(MAX_EVENTS) in answer["error"]
    # A gzip body that inflates past the limit: refused without inflating it all.
    bomb = gzip.compress(body([b'{"event_type":"x","pad":"' + b" " * (8 * MAX_BODY_BYTES)
                               + b'"}']))
    assert len(bomb) < 64 * 1024
    headers = {**running.headers(), "Content-Encoding": "gzip"}
    status, answer = await running.post([], data=bomb, headers=headers)
    assert status == 413
    assert await running.count() == 0


async def test_gzip_bodies_are_accepted(running: Running) -> None:
    headers = {**running.headers([f"g{i}" for i in range(len(EVENTS))]),
               "Content-Encoding": "gzip"}
    status, answer = await running.post([], data=gzip.compress(body(EVENTS)), headers=headers)
    assert status == 200 and answer["accepted"] == len(EVENTS)
    payloads = [r[0] for r in await running.store.fetch("SELECT payload FROM events ORDER BY seq")]
    assert [json.loads(p) for p in payloads] == [json.loads(e) for e in EVENTS]
    headers["Content-Encoding"] = "br"
    status, answer = await running.post([], data=b"x", headers=headers)
    assert status == 415


async def test_codex_style_batches_without_ids_are_stored_once(running: Running) -> None:
    headers = running.headers()  # codex itself sends no event ids
    for _ in range(2):
        status, _ = await running.post(EVENTS, headers=headers)
        assert status == 200
    assert await running.count() == len(EVENTS)
    keyed = {**headers, "Idempotency-Key": "k1"}
    for _ in range(2):
        status, _ = await running.post(EVENTS[:2], headers=keyed)
    assert await running.store.fetch(
        "SELECT event_id FROM events WHERE event_id LIKE 'k1#%' ORDER BY seq") == [
        ("k1#0",), ("k1#1",)]


async def test_health_endpoints_need_no_token(running: Running) -> None:
    for path, expected in (("/livez", "ok"), ("/readyz", "ready")):
        async with running.client.get(path) as response:
            assert response.status == 200
            assert (await response.json())["status"] == expected


async def test_store_down_is_503_with_retry_after_and_nothing_acknowledged(
    pg_server: PgServer, pg_dsn: str, tmp_path: Path, aiohttp_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tokens_file = tmp_path / "tokens"
    token = add_token(tokens_file, "alice")
    store = await open_store(pg_dsn, migrate=True, wait=False)
    logger = logging.getLogger("test.collector")
    client = await aiohttp_client(Collector(store, TokenBook(tokens_file, logger),
                                            logger=logger).app())
    headers = {"Authorization": f"Bearer {token}", IDS: ",".join(
        f"d{i}" for i in range(len(EVENTS)))}
    try:
        await asyncio.to_thread(pg_server.stop, "immediate")
        try:
            async with client.post(PATH, data=body(EVENTS), headers=headers) as response:
                assert response.status == 503
                assert int(response.headers["Retry-After"]) > 0
            async with client.get("/readyz") as response:
                assert response.status == 503
            async with client.get("/livez") as response:
                assert response.status == 200
        finally:
            await asyncio.to_thread(pg_server.start)
        status = 503
        deadline = asyncio.get_running_loop().time() + 30
        while status == 503 and asyncio.get_running_loop().time() < deadline:
            async with client.post(PATH, data=body(EVENTS), headers=headers) as response:
                status = response.status
                answer = await response.json()
            if status == 503:  # the sender's retry, after its Retry-After (shortened here)
                await asyncio.sleep(0.05)
        assert status == 200 and answer["accepted"] + answer["duplicates"] == len(EVENTS)
        assert await store.fetch("SELECT COUNT(*) FROM events") == [(len(EVENTS),)]
    finally:
        await store.close()
    assert any("store unavailable" in r.getMessage() for r in caplog.records)
    assert all(token not in r.getMessage() for r in caplog.records)
