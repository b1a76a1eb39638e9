"""Versioned schema migrations, applied on open, the same way on both dialects.

The ``schema_migrations`` table lists the versions applied. Opening a store applies the
missing ones in order, each in the transaction that records it, under a lock (PostgreSQL: a
transaction-level advisory lock; SQLite: ``BEGIN IMMEDIATE``), so any number of collectors may
start at once on one database and exactly one of them migrates. A database migrated by a newer
version of this tool is refused rather than misread.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from .base import StoreError
from .schema import MIGRATIONS, SCHEMA_VERSION

MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, applied_at_ms BIGINT NOT NULL)"
)
# pg_advisory_xact_lock's key: any constant unique to this tool ("cra" + schema).
_PG_LOCK_KEY = 0x637261_5343484D


def _too_new(version: int, where: str) -> StoreError:
    return StoreError(
        f"{where} has schema version {version}, newer than this codex-rpc-analytics knows "
        f"({SCHEMA_VERSION}): upgrade codex-rpc-analytics"
    )


def migrate_sqlite(conn: sqlite3.Connection, where: str) -> int:
    """Bring a SQLite store to :data:`SCHEMA_VERSION`; returns the version found before."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(MIGRATIONS_TABLE)
        found = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise _too_new(found, where)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]["sqlite"]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)",
                         (version, int(time.time() * 1000)))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return int(found)


def sqlite_version_of(conn: sqlite3.Connection, where: str) -> int:
    """The schema version of a store opened for reading; refuses a missing or newer schema."""
    try:
        found = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
    except sqlite3.OperationalError:
        found = None
    if not found:
        raise StoreError(f"{where} holds no event store (run `codex-rpc-analytics collect`)")
    if found > SCHEMA_VERSION:
        raise _too_new(found, where)
    return int(found)


async def migrate_postgres(conn: Any, where: str) -> int:
    """Bring a PostgreSQL store to :data:`SCHEMA_VERSION` (``conn``: an asyncpg connection)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_LOCK_KEY)
        await conn.execute(MIGRATIONS_TABLE)
        found = int(await conn.fetchval(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"))
        if found > SCHEMA_VERSION:
            raise _too_new(found, where)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version]["postgresql"]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)",
                               version, int(time.time() * 1000))
    return found


async def postgres_version_of(conn: Any, where: str) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    found = await conn.fetchval("SELECT MAX(version) FROM schema_migrations") if exists else None
    if not found:
        raise StoreError(f"{where} holds no event store (run `codex-rpc-analytics collect`)")
    if found > SCHEMA_VERSION:
        raise _too_new(found, where)
    return int(found)
