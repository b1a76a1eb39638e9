"""The SQLite store: the collector's embedded default, one file, and the outbox's query copy.

Every call runs on one worker thread that owns the connection (a sqlite3 connection belongs to
its thread), so the collector's event loop never blocks on the disk. Writes are ``BEGIN
IMMEDIATE`` transactions in WAL mode with ``synchronous=FULL``: a batch acknowledged to a
sender survives a crash of the machine, not only of the process.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..delivery.wal_file import create_wal_file
from .base import EventStore, IngestResult, Row, StoreError, StoreUnavailable, payload_filter
from .migrations import migrate_sqlite, sqlite_version_of
from .schema import COLUMN_NAMES

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000
_PLACEHOLDER = re.compile(r"\$(\d+)")
_INSERT = (
    f"INSERT INTO events ({', '.join(COLUMN_NAMES)})"
    f" VALUES ({', '.join('?' * len(COLUMN_NAMES))})"
    " ON CONFLICT (source, event_id) DO NOTHING"
)


def sqlite_sql(sql: str) -> str:
    """``$1`` (asyncpg's placeholders, used by every shared query) -> ``?1`` (SQLite's)."""
    return _PLACEHOLDER.sub(r"?\1", sql)


class SqliteStore(EventStore):
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, display: str, executor: ThreadPoolExecutor):
        self._conn = conn
        self.display = display
        self._executor = executor

    @classmethod
    async def open(cls, path: Path | str, *, migrate: bool) -> SqliteStore:
        """Open a store file (``":memory:"`` for a private in-memory one). ``migrate``: create
        or upgrade the schema (the collector); otherwise only read an existing store."""
        display = str(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        loop = asyncio.get_running_loop()

        def connect() -> sqlite3.Connection:
            if migrate and path != ":memory:":
                file = Path(path)
                file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                if not file.exists():
                    # Events describe the team's sessions: private (0600), and WAL
                    # from the start (see wal_file).
                    create_wal_file(file)
            if not migrate:
                if not Path(path).is_file():
                    raise StoreError(f"no store at {display}")
                conn = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True,
                                       isolation_level=None, check_same_thread=False)
            else:
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                if migrate:
                    conn.execute("PRAGMA journal_mode = WAL")
                    conn.execute("PRAGMA synchronous = FULL")
                    migrate_sqlite(conn, display)
                else:
                    sqlite_version_of(conn, display)
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            conn = await loop.run_in_executor(executor, connect)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise StoreError(f"cannot open store {display}: {exc}") from exc
        except OSError as exc:  # creating the file or its directory
            executor.shutdown(wait=False)
            raise StoreError(f"cannot create store {display}: {exc.strerror or exc}") from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(conn, display, executor)

    async def _run(self, job: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, job)
        except sqlite3.OperationalError as exc:
            # Locked for longer than busy_timeout, disk full, I/O error: the next try may work.
            raise StoreUnavailable(f"store {self.display}: {exc}") from exc

    async def ingest(self, rows: Sequence[Row]) -> IngestResult:
        if not rows:
            return IngestResult(0, 0)

        def insert() -> int:
            conn = self._conn
            before = conn.total_changes
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT, rows)
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            return conn.total_changes - before

        inserted = await self._run(insert)
        return IngestResult(inserted, len(rows) - inserted)

    async def fetch(self, sql: str, *params: object) -> list[Row]:
        text = sqlite_sql(sql)
        return await self._run(lambda: list(self._conn.execute(text, params)))

    async def payloads(self, types: Sequence[str], since_ms: int | None) -> AsyncIterator[bytes]:
        where, params = payload_filter(types, since_ms)
        cursor = await self._run(lambda: self._conn.execute(
            sqlite_sql(f"SELECT payload FROM events{where} ORDER BY seq"), params))
        while True:
            chunk: list[Any] = await self._run(lambda: cursor.fetchmany(1000))
            if not chunk:
                return
            for (payload,) in chunk:
                yield payload.encode() if isinstance(payload, str) else bytes(payload)

    async def ping(self) -> None:
        await self._run(lambda: self._conn.execute("SELECT 1").fetchone())

    def run_sync(self, job: Callable[[sqlite3.Connection], T]) -> Any:
        """Run ``job(connection)`` on the store's thread (for :mod:`.outbox_view`)."""
        return self._run(lambda: job(self._conn))

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)
