"""The store on both dialects: migrations, exactly-once ingestion, typed columns, faults.

Every test that takes ``store_spec`` runs on a SQLite file and on a real PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from codex_rpc_analytics.store import (
    COLUMN_NAMES,
    SCHEMA_VERSION,
    NotAnEvent,
    PostgresStore,
    StoreError,
    StoreUnavailable,
    make_row,
    open_store,
)
from tests.pgserver import PgServer
from tests.support import another_writer_while_connecting, recorded_events, replayed_events

T = TypeVar("T")
RECEIVED_MS = 1_800_000_000_000
EVENTS = replayed_events()


def rows_of(events: list[bytes], source: str = "team-a") -> list[tuple[object, ...]]:
    return [make_row(source, f"id-{i}", e, RECEIVED_MS) for i, e in enumerate(events)]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite3")
    return str(request.getfixturevalue("pg_dsn"))


def column(row: tuple[object, ...], name: str) -> object:
    return row[COLUMN_NAMES.index(name) + 1]  # +1: seq comes first in SELECT *


async def test_ingest_is_exactly_once_per_source_and_event_id(store_spec: str) -> None:
    assert len(EVENTS) >= 10
    store = await open_store(store_spec, migrate=True)
    try:
        first = await store.ingest(rows_of(EVENTS))
        assert (first.inserted, first.duplicates, first.rejected) == (len(EVENTS), 0, [])
        again = await store.ingest(rows_of(EVENTS))  # a resent batch
        assert (again.inserted, again.duplicates) == (0, len(EVENTS))
        # The same ids from another source are other events.
        other = await store.ingest(rows_of(EVENTS[:3], source="team-b"))
        assert (other.inserted, other.duplicates) == (3, 0)
        # Duplicates inside one batch are stored once.
        twice = rows_of(EVENTS[:2], source="team-c") * 2
        inside = await store.ingest(twice)
        assert (inside.inserted, inside.duplicates) == (2, 2)
        counts = await store.fetch(
            "SELECT source, COUNT(*), COUNT(DISTINCT event_id) FROM events"
            " GROUP BY source ORDER BY source")
        assert counts == [("team-a", len(EVENTS), len(EVENTS)), ("team-b", 3, 3),
                          ("team-c", 2, 2)]
    finally:
        await store.close()


async def test_typed_columns_hold_what_a_team_groups_by(store_spec: str) -> None:
    turn = recorded_events("fakeauth_full_flow", "codex_turn_event")[0]
    params = json.loads(turn)["event_params"]
    store = await open_store(store_spec, migrate=True)
    try:
        await store.ingest([make_row("team-a", "turn-1", turn, RECEIVED_MS)])
        rows = await store.fetch(
            "SELECT event_type, occurred_at_ms, received_at_ms, client, model, status,"
            " duration_ms, input_tokens, cached_input_tokens, output_tokens,"
            " reasoning_output_tokens, total_tokens, sandbox_policy, approval_policy,"
            " is_first_turn, thread_id, turn_id FROM events WHERE source = $1 AND event_id = $2",
            "team-a", "turn-1")
        assert len(rows) == 1
        row = rows[0]
        assert row[:6] == ("codex_turn_event", params["completed_at"] * 1000, RECEIVED_MS,
                           params["app_server_client"]["product_client_id"], params["model"],
                           params["status"])
        assert row[6:12] == (params["duration_ms"], params["input_tokens"],
                             params["cached_input_tokens"], params["output_tokens"],
                             params["reasoning_output_tokens"], params["total_tokens"])
        assert row[12:14] == (params["sandbox_policy"], params["approval_policy"])
        assert bool(row[14]) is params["is_first_turn"]
        assert row[15:] == (params["thread_id"], params["turn_id"])
        # The full event is kept, byte for byte, on both dialects.
        payload = (await store.fetch("SELECT payload FROM events"))[0][0]
        assert payload == turn.decode()
    finally:
        await store.close()


async def test_a_large_event_is_stored_compressed_and_read_back_byte_for_byte(
    store_spec: str,
) -> None:
    # Over PostgreSQL's ~2 KB row threshold the payload is compressed (LZ4 from migration 3,
    # the cheaper codec on the ingest path); what is read back is still the sender's bytes.
    notes = ",".join(f'"note {i}: {"ab" * (i % 7)}"' for i in range(400))
    large = ('{"event_type":"codex_turn_event","event_params":{"thread_id":"t",'
             f'"notes":[{notes}]}}}}').encode()
    assert len(large) > 4000
    store = await open_store(store_spec, migrate=True)
    try:
        await store.ingest([make_row("team-a", "large", large, RECEIVED_MS)])
        assert [p async for p in store.payloads([], None)] == [large]
        if store.dialect == "postgresql":
            assert await store.fetch("SELECT pg_column_compression(payload) FROM events") == [
                ("lz4",)]
    finally:
        await store.close()


async def test_unknown_event_types_are_stored_and_counted(store_spec: str) -> None:
    future = [
        b'{"event_type":"codex_compaction_event","event_params":{"thread_id":"t","status":7}}',
        b'{"event_type":"something_new"}',
    ]
    store = await open_store(store_spec, migrate=True)
    try:
        result = await store.ingest(rows_of(future))
        assert result.inserted == 2
        rows = await store.fetch(
            "SELECT event_type, thread_id, status, occurred_at_ms FROM events ORDER BY seq")
        # A key of another type than ours (status: 7) is left out of its column, not refused.
        assert rows == [("codex_compaction_event", "t", None, RECEIVED_MS),
                        ("something_new", None, None, RECEIVED_MS)]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[1,2]", "JSON object"),
        (b'{"event_params":{}}', "event_type"),
        (b'{"event_type":"x","event_params":[1]}', "event_params"),
        (b'{"event_type":"x"', "not valid JSON"),
        (b'{"event_type":"x","event_params":{"note":"a\\u0000b"}}', "NUL"),
        (b'{"event_type":"x","pad":"' + b"x" * 70000 + b'"}', "over the limit"),
    ],
)
def test_what_is_not_an_event_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(NotAnEvent, match=reason):
        make_row("s", "id", payload, RECEIVED_MS)


async def test_migrations_run_once_and_a_newer_schema_is_refused(
    store_spec: str, tmp_path: Path
) -> None:
    # Several collectors starting at once on one database: one migrates, none fails.
    stores = await asyncio.gather(*(open_store(store_spec, migrate=True) for _ in range(4)))
    try:
        versions = await stores[0].fetch(
            "SELECT version FROM schema_migrations ORDER BY version")
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        await stores[0].fetch(
            "INSERT INTO schema_migrations VALUES ($1, 0)", SCHEMA_VERSION + 1)
    finally:
        for store in stores:
            await store.close()
    for migrate in (True, False):
        with pytest.raises(StoreError, match="newer than this codex-rpc-analytics knows"):
            await open_store(store_spec, migrate=migrate)


async def test_a_collector_opening_a_new_store_while_another_writes_it_waits_for_it(
    tmp_path: Path,
) -> None:
    """Collectors starting together on a new SQLite store (two `collect`, or workers sharing a
    port with --reuse-port): one holds the write lock while the other sets up its connection,
    and the other waits for it (busy_timeout). SQLite does not wait to switch a file to WAL, so
    a store file switched after it appeared failed the other with "database is locked"."""
    path = tmp_path / "store.sqlite3"
    with another_writer_while_connecting(path) as writers:
        store = await open_store(str(path), migrate=True)
    try:
        assert len(writers) == 1
        versions = await store.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    finally:
        await store.close()


async def test_readers_never_create_a_store(store_spec: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError) as error:
        await open_store(store_spec, migrate=False)
    assert "\n" not in str(error.value)
    if not store_spec.startswith("postgresql"):
        assert not Path(store_spec).exists()


def test_sqlite_store_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "store.sqlite3"
    asyncio.run(_open_close(str(path)))
    assert path.stat().st_mode & 0o777 == 0o600
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def _open_close(spec: str) -> None:
    store = await open_store(spec, migrate=True)
    await store.close()


async def test_postgres_down_is_unavailable_then_recovers(
    pg_server: PgServer, pg_dsn: str
) -> None:
    store = await open_store(pg_dsn, migrate=True)
    assert isinstance(store, PostgresStore)
    try:
        assert (await store.ingest(rows_of(EVENTS[:5]))).inserted == 5
        await asyncio.to_thread(pg_server.stop, "immediate")
        try:
            with pytest.raises(StoreUnavailable):
                await store.ingest(rows_of(EVENTS[:10]))
            with pytest.raises(StoreUnavailable):
                await store.ping()
        finally:
            await asyncio.to_thread(pg_server.start)
        # The pool reconnects; what the failed call may have stored is skipped, not doubled.
        result = await _retry(lambda: store.ingest(rows_of(EVENTS[:10])))
        assert result.inserted + result.duplicates == 10
        assert await store.fetch("SELECT COUNT(*) FROM events") == [(10,)]
    finally:
        await store.close()


async def test_a_row_postgres_refuses_is_rejected_alone(pg_dsn: str) -> None:
    store = await open_store(pg_dsn, migrate=True)
    try:
        rows = rows_of(EVENTS[:3])
        bad = list(rows[1])
        bad[COLUMN_NAMES.index("client")] = "nul\x00inside"  # what make_row never lets through
        result = await store.ingest([rows[0], tuple(bad), rows[2]])
        assert result.inserted == 2 and result.duplicates == 0
        assert [r.index for r in result.rejected] == [1]
        assert "refused" in result.rejected[0].reason
    finally:
        await store.close()


async def test_a_database_that_is_down_at_start_is_waited_for(
    pg_server: PgServer, pg_dsn: str
) -> None:
    await asyncio.to_thread(pg_server.stop, "fast")
    try:
        with pytest.raises(StoreError, match="cannot reach"):
            await open_store(pg_dsn, migrate=True)
        store = await open_store(pg_dsn, migrate=True, wait=False)  # the collector's way
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await asyncio.to_thread(pg_server.start)
    try:
        await _retry(store.ping)
        assert (await store.ingest(rows_of(EVENTS[:1]))).inserted == 1
    finally:
        await store.close()


async def _retry(call: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
    """Call until the store answers (it reconnects after a restart), within ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await call()
        except StoreUnavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)
