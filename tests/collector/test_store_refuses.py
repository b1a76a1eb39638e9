"""A store that answers but refuses every write (a read-only database, a revoked INSERT
privilege) is not a batch of bad events: the collector answers 503 with ``Retry-After``, the
sender keeps every event, and they arrive once the store takes writes again. Events the store
does blame on their data are still rejected one by one, and the sink parks those (rejected in
the outbox, counted, re-sendable) instead of dropping them. Real PostgreSQL, real SQLite, our
real sink against our real collector (aiohttp test servers)."""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from codex_rpc_analytics.collector import Collector, TokenBook, add_token
from codex_rpc_analytics.delivery import Delivery, HttpSinkSpec, RetryPolicy, requeue_command
from codex_rpc_analytics.store import EventStore, StoreUnavailable, open_store, stats_command
from tests.collector.test_collector import EVENTS, IDS, PATH, body
from tests.delivery.support import make_event, outbox_rows
from tests.pgserver import PgServer

LOGGER = logging.getLogger("test.collector")
POLICY = RetryPolicy(base_s=0.02, cap_s=0.1, retry_after_cap_s=0.1, timeout_total_s=5.0,
                     timeout_connect_s=1.0)


@dataclass
class Served:
    client: TestClient[Any, Any]
    store: EventStore
    token: str
    tokens_file: Path

    async def post(self, ids: list[str]) -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {self.token}", IDS: ",".join(ids)}
        async with self.client.post(PATH, data=body(EVENTS[:len(ids)]), headers=headers) as r:
            return r.status, dict(r.headers), await r.json()

    async def count(self) -> int:
        return int((await self.store.fetch("SELECT COUNT(*) FROM events"))[0][0])


async def _serve(spec: str, tmp_path: Path, aiohttp_client: Any) -> Served:
    tokens_file = tmp_path / "tokens"
    token = add_token(tokens_file, "alice")
    store = await open_store(spec, migrate=True, wait=False)
    client = await aiohttp_client(Collector(store, TokenBook(tokens_file, LOGGER),
                                            logger=LOGGER).app())
    return Served(client, store, token, tokens_file)


@pytest.fixture
async def admin(pg_server: PgServer) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        yield conn
    finally:
        await conn.close()


def _database(dsn: str) -> str:
    return dsn.rsplit("/", 1)[1]


async def _read_only(admin: asyncpg.Connection, database: str, on: bool) -> None:
    """Turn the database read-only (or back), and end its sessions so every new one sees it."""
    setting = ("SET default_transaction_read_only = on" if on
               else "RESET default_transaction_read_only")
    await admin.execute(f'ALTER DATABASE "{database}" {setting}')
    await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = $1", database)


async def _until_accepted(served: Served, ids: list[str]) -> Any:
    """Post until 200 (the pool reconnects after its sessions were ended), within 30 s."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        status, _, answer = await served.post(ids)
        if status != 503 or asyncio.get_running_loop().time() > deadline:
            assert status == 200, answer
            return answer
        await asyncio.sleep(0.05)  # the sender's Retry-After, shortened


async def test_a_read_only_database_is_503_and_no_event_is_rejected(
    pg_dsn: str, admin: asyncpg.Connection, tmp_path: Path, aiohttp_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = await _serve(pg_dsn, tmp_path, aiohttp_client)
    try:
        assert (await served.post(["a0"]))[0] == 200
        await _read_only(admin, _database(pg_dsn), True)
        ids = [f"r{i}" for i in range(len(EVENTS))]
        for _ in range(3):  # the first may meet a session that was ended: 503 as well
            status, headers, answer = await served.post(ids)
            assert (status, "rejected" in answer) == (503, False), answer
            assert int(headers["Retry-After"]) > 0
        await _read_only(admin, _database(pg_dsn), False)
        answer = await _until_accepted(served, ids)
        assert answer == {"accepted": len(EVENTS), "duplicates": 0, "rejected": []}
        assert await served.count() == 1 + len(EVENTS)
    finally:
        await served.store.close()
    messages = [r.getMessage() for r in caplog.records]
    refusing = [m for m in messages if "refuses writes" in m]
    assert len(refusing) == 1 and "read-only" in refusing[0]
    assert any("accepts writes again" in m for m in messages)


async def test_a_collector_started_on_a_read_only_database_answers_503(
    pg_dsn: str, admin: asyncpg.Connection, tmp_path: Path, aiohttp_client: Any,
) -> None:
    first = await _serve(pg_dsn, tmp_path / "first", aiohttp_client)
    assert (await first.post(["a0"]))[0] == 200  # migrated, then read-only
    await first.store.close()
    await _read_only(admin, _database(pg_dsn), True)
    served = await _serve(pg_dsn, tmp_path, aiohttp_client)
    try:
        status, headers, answer = await served.post(["s0"])
        assert "Retry-After" in headers
        assert status == 503 and "refuses writes" in answer["error"]
        await _read_only(admin, _database(pg_dsn), False)
        assert (await _until_accepted(served, ["s0"]))["accepted"] == 1
    finally:
        await served.store.close()


async def test_a_revoked_insert_privilege_is_503_and_no_event_is_rejected(
    pg_server: PgServer, pg_dsn: str, admin: asyncpg.Connection, tmp_path: Path,
    aiohttp_client: Any,
) -> None:
    role = f"writer_{uuid.uuid4().hex[:8]}"
    database = _database(pg_dsn)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    database_admin = await asyncpg.connect(pg_dsn)  # as the superuser, in the test's database
    try:
        await database_admin.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')
        dsn = f"postgresql://{role}@127.0.0.1:{pg_server.port}/{database}"
        served = await _serve(dsn, tmp_path, aiohttp_client)  # the role owns what it migrates
        try:
            assert (await served.post(["a0"]))[0] == 200
            await database_admin.execute(f'REVOKE INSERT ON events FROM "{role}"')
            ids = [f"p{i}" for i in range(len(EVENTS))]
            status, headers, answer = await served.post(ids)
            assert (status, "rejected" in answer) == (503, False), answer
            assert "Retry-After" in headers
            await database_admin.execute(f'GRANT INSERT ON events TO "{role}"')
            answer = await _until_accepted(served, ids)
            assert answer["accepted"] == len(EVENTS) and answer["rejected"] == []
        finally:
            await served.store.close()
    finally:
        await database_admin.close()


async def test_a_read_only_sqlite_store_is_503(tmp_path: Path, aiohttp_client: Any) -> None:
    served = await _serve(str(tmp_path / "team.sqlite3"), tmp_path, aiohttp_client)
    try:
        assert (await served.post(["a0"]))[0] == 200
        # What a read-only file or mount does to the open connection (root ignores modes).
        await served.store.fetch("PRAGMA query_only = ON")
        status, headers, answer = await served.post(["b0", "b1"])
        assert (status, "rejected" in answer) == (503, False) and "Retry-After" in headers
        await served.store.fetch("PRAGMA query_only = OFF")
        assert (await served.post(["b0", "b1"]))[2]["accepted"] == 2
    finally:
        await served.store.close()


async def test_the_sink_keeps_every_event_while_the_database_is_read_only(
    pg_dsn: str, admin: asyncpg.Connection, tmp_path: Path, aiohttp_client: Any,
) -> None:
    served = await _serve(pg_dsn, tmp_path, aiohttp_client)
    token_file = tmp_path / "collector.token"
    token_file.write_text(served.token + "\n")
    token_file.chmod(0o600)
    state = tmp_path / "state"
    delivery = Delivery(state_dir=state, sinks=[HttpSinkSpec(
        f"http://127.0.0.1:{served.client.port}/", token_file=str(token_file))],
        batch_linger_s=0.01, retry_policy=POLICY)
    events = [make_event(n) for n in range(20)]
    try:
        assert (await served.post(["a0"]))[0] == 200  # the collector's pool is connected
        await _read_only(admin, _database(pg_dsn), True)
        delivery.start()
        delivery.submit(events)
        result = await delivery.flush_async(0.5)  # the collector answers 503 all along
        assert not result.complete
        sink = delivery.status().sinks[0]
        assert (sink.delivered, sink.rejected, sink.pending) == (0, 0, len(events))
        await _read_only(admin, _database(pg_dsn), False)
        result = await delivery.close_async(30)
        assert result.complete, result
        assert await served.count() == 1 + len(events)
    finally:
        await served.store.close()
    assert outbox_rows(state, "SELECT state, COUNT(*) FROM deliveries GROUP BY 1") == [
        ("delivered", len(events))]


async def test_events_the_collector_refuses_are_parked_not_dropped(
    tmp_path: Path, aiohttp_client: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    served = await _serve(str(tmp_path / "team.sqlite3"), tmp_path, aiohttp_client)
    token_file = tmp_path / "collector.token"
    token_file.write_text(served.token + "\n")
    token_file.chmod(0o600)
    state = tmp_path / "state"
    spec = HttpSinkSpec(f"http://127.0.0.1:{served.client.port}/", token_file=str(token_file))
    events = [make_event(n) for n in range(6)]
    events[2] = make_event(2, pad=70_000)  # over the collector's 64 KiB for one event
    events[4] = make_event(4, pad=80_000)
    delivery = Delivery(state_dir=state, sinks=[spec], batch_linger_s=0.01,
                        retry_policy=POLICY, logger=logging.getLogger("test.delivery"))
    try:
        delivery.start()
        delivery.submit(events)
        assert (await delivery.flush_async(10)).complete
        sink = delivery.status().sinks[0]
        assert (sink.delivered, sink.rejected, sink.pending) == (4, 2, 0)
        assert "over the limit" in (sink.last_error or "")
        await delivery.close_async(5)
        assert await served.count() == 4
    finally:
        await served.store.close()
    parked = outbox_rows(state, "SELECT d.seq, d.last_error FROM deliveries d"
                         " WHERE d.state = 'rejected' ORDER BY d.seq")
    assert [seq for seq, _ in parked] == [3, 5]
    assert all("over the limit of 65536" in (error or "") for _, error in parked)
    warnings = [r.getMessage() for r in caplog.records if "refused 2 of 6" in r.getMessage()]
    assert len(warnings) == 1 and "requeue" in warnings[0]
    out = io.StringIO()
    assert await asyncio.to_thread(stats_command, state, out) == 0
    assert "delivered 4, pending 0, rejected 2" in out.getvalue()
    assert requeue_command(state, [], out=io.StringIO()) == 0
    assert outbox_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'") == [
        (2,)]


async def test_readers_open_a_read_only_database(
    pg_dsn: str, admin: asyncpg.Connection,
) -> None:
    """``stats``/``events``/the report against a read-only database (a hot standby): readers
    create nothing, not even the writers' temporary staging table."""
    store = await open_store(pg_dsn, migrate=True)
    await store.close()
    await _read_only(admin, _database(pg_dsn), True)
    reader = await open_store(pg_dsn, migrate=False)
    try:
        assert await reader.fetch("SELECT COUNT(*) FROM events") == [(0,)]
    finally:
        await reader.close()


async def test_sessions_ended_by_an_administrator_are_503_then_replaced(
    pg_dsn: str, admin: asyncpg.Connection, tmp_path: Path, aiohttp_client: Any,
) -> None:
    """``pg_terminate_backend`` (or a failover) ends the pool's idle sessions: a request that
    meets one is answered 503 (never a 500), and the pool replaces it."""
    served = await _serve(pg_dsn, tmp_path, aiohttp_client)
    try:
        for round_ in range(10):
            assert (await _until_accepted(served, [f"k{round_}"]))["accepted"] == 1
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                " WHERE datname = $1", _database(pg_dsn))
            status, _, answer = await served.post([f"m{round_}"])
            assert status in (200, 503), answer
        # Readers meet the ended sessions too: unavailable (a 503 on the dashboard), then
        # answered on a new one.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            try:
                rows = await served.store.fetch("SELECT event_id FROM events")
                break
            except StoreUnavailable:
                assert asyncio.get_running_loop().time() < deadline
        assert {f"k{n}" for n in range(10)} <= {r[0] for r in rows}
    finally:
        await served.store.close()
