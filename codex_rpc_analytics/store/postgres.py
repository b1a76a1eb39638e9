"""The PostgreSQL store, through asyncpg: what a team runs, any number of collectors at once.

Collectors are stateless: everything they share is in the database. A batch is one ``INSERT
… SELECT FROM unnest(…) ON CONFLICT (source, event_id) DO NOTHING`` statement, one
transaction: all of it is committed, or none, and rows get their ``seq`` in batch order. Two
collectors inserting the same events at once (a resend to another collector while the first is
still at it) wait for each other on the unique key; whichever commits second skips what the
first stored. Overlapping batches always list their events in the sender's outbox order, so
they take the key locks in one order and cannot deadlock; if one ever did, PostgreSQL's
deadlock error is a retryable fault like any other.

Faults are sorted in three, by SQLSTATE class:

* the database cannot be reached or is restarting (a connection, an operator-intervention, a
  resource or a transaction-rollback error, a timeout): :class:`StoreUnavailable`, and the pool
  reconnects on a later call;
* the database refuses *this data*: class 22 (data exception: a NUL character, a value out of
  range) or class 23 (integrity constraint violation): the batch is retried row by row, so one
  bad row is rejected by itself and the rest of the batch is stored;
* anything else (a read-only database or transaction, 25006; a revoked INSERT privilege, 42501;
  a dropped table; an internal error): the store refuses every row alike, whatever it holds, so
  no row is to blame: :class:`StoreRefusing`, and the collector answers 503 so the sender keeps
  the batch. Rejecting each row there would turn an operator's mistake into silent data loss.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from urllib.parse import unquote_plus

import asyncpg

from .base import (
    EventStore,
    IngestResult,
    Rejected,
    Row,
    StoreError,
    StoreRefusing,
    StoreUnavailable,
    payload_filter,
)
from .migrations import migrate_postgres, postgres_version_of
from .schema import COLUMNS, Column, column_type

CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 30.0

# A batch is first COPYed (binary) straight into events: one statement, so all of it or none,
# at the speed of COPY itself. Almost every batch is new; one that holds an event already
# stored (a resend) fails that COPY on the unique key and takes the exactly-once path: COPY
# into a per-connection staging table (temporary: unlogged, emptied at commit), then one
# INSERT … SELECT … ON CONFLICT DO NOTHING, in one transaction. COPY costs the collector half
# the CPU per event of array parameters to unnest() (asyncpg checks every array element
# against the iterable ABCs).
STAGING = "incoming_events"
_STAGING_TYPES = {"text": "TEXT", "int": "BIGINT", "bool": "BOOLEAN", "json": "TEXT"}
_CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} ("
    + ", ".join(f"{c.name} {_STAGING_TYPES[c.kind]}" for c in COLUMNS)
    + ", n BIGINT GENERATED ALWAYS AS IDENTITY) ON COMMIT DELETE ROWS"
)


def _from_staging(column: Column) -> str:
    # The payload is staged as text and becomes JSON (validated) on the way into events.
    if column.kind == "json":
        return f"{column.name}::{column_type('postgresql', column)}"
    return column.name


_INSERT = (
    f"INSERT INTO events ({', '.join(c.name for c in COLUMNS)})"
    f" SELECT {', '.join(_from_staging(c) for c in COLUMNS)}"
    f" FROM {STAGING} ORDER BY n"
    " ON CONFLICT (source, event_id) DO NOTHING"
)
_COLUMN_NAMES = [c.name for c in COLUMNS]

# Errors that say "not now" rather than "not this data".
_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,  # includes ConnectionDoesNotExistError: the server went away
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, cannot connect now
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # class 40: deadlock, serialization
    # The connection's protocol state broke: seen when the server ended the session (an
    # administrator's pg_terminate_backend, a failover) while it idled in the pool.
    asyncpg.InternalClientError,
)


# SQLSTATE classes that blame the row, not the store (see the module's docstring).
DATA_ERROR_CLASSES = ("22", "23")


def is_data_error(exc: asyncpg.PostgresError) -> bool:
    """Whether the database refused the rows themselves (so another row may well pass)."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return sqlstate[:2] in DATA_ERROR_CLASSES


def _refuses_writes(exc: asyncpg.PostgresError) -> bool:
    """A read-only database or transaction (class 25) or a missing privilege (42501): the
    collector starts and answers 503 until an operator fixes it (not a fatal start error)."""
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return sqlstate[:2] == "25" or sqlstate == "42501"


# Query parameters whose value is a secret (libpq's and asyncpg's names; keys are matched
# case-insensitively and percent-decoded, as a URI parser would read them).
SECRET_PARAMS = frozenset({"password", "sslpassword"})
_MASK = "***"


def redact_dsn(dsn: str) -> str:
    """The DSN without any password, fit for output (logs, errors, the report, the
    dashboard): the userinfo's password and every ``password``/``sslpassword`` query value
    become ``***``.

    Made for malformed DSNs too (they end up in "cannot open …" errors): a password may hold
    an unencoded ``/``, ``?``, ``#`` or ``@``, so the userinfo is everything before the *last*
    ``@`` (an ``@`` in the query masks more than needed, never less), and a query value runs to
    the next ``&``, whatever it holds."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        return _MASK
    userinfo, at, hostpart = rest.rpartition("@")
    if at and ":" in userinfo:
        head, query = f"{userinfo.partition(':')[0]}:{_MASK}@", hostpart
    else:
        head, query = "", rest
    base, question, params = query.partition("?")
    if question:
        masked = []
        for part in params.split("&"):
            key, eq, _ = part.partition("=")
            if eq and unquote_plus(key).strip().lower() in SECRET_PARAMS:
                part = f"{key}={_MASK}"
            masked.append(part)
        query = base + "?" + "&".join(masked)
    return f"{scheme}://{head}{query}"


class PostgresStore(EventStore):
    dialect = "postgresql"

    def __init__(self, dsn: str, *, migrate: bool, max_connections: int) -> None:
        self._dsn = dsn
        self.display = redact_dsn(dsn)
        self._migrate = migrate
        self._max_connections = max_connections
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    @classmethod
    async def open(cls, dsn: str, *, migrate: bool, max_connections: int = 10,
                   wait: bool = True) -> PostgresStore:
        """A store on ``dsn``. With ``wait=False`` a database that is down now is not an
        error: the first call that needs it connects (the collector starts before it)."""
        store = cls(dsn, migrate=migrate, max_connections=max_connections)
        if wait:
            try:
                await store._get_pool()
            except StoreUnavailable as exc:
                raise StoreError(str(exc)) from None
        return store

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                self._pool = await self._create_pool()
        return self._pool

    async def _create_pool(self) -> asyncpg.Pool:
        try:
            pool = await asyncpg.create_pool(
                self._dsn, min_size=1, max_size=self._max_connections,
                timeout=CONNECT_TIMEOUT_S, command_timeout=COMMAND_TIMEOUT_S,
                # Readers never write: they open a read-only standby as well.
                init=_prepare_connection if self._migrate else None, reset=_keep_session,
            )
        except (asyncpg.exceptions.ClientConfigurationError, ValueError) as exc:
            raise StoreError(f"cannot open {self.display}: {_describe(exc)}") from None
        except _TRANSIENT as exc:
            raise StoreUnavailable(f"cannot reach {self.display}: {_describe(exc)}") from None
        except asyncpg.PostgresError as exc:
            if _refuses_writes(exc):
                raise self._refusing(exc) from None
            # Authentication, unknown database, a malformed DSN: not going to fix itself.
            raise StoreError(f"cannot open {self.display}: {_describe(exc)}") from None
        try:
            async with pool.acquire() as conn:
                if self._migrate:
                    await migrate_postgres(conn, self.display)
                else:
                    await postgres_version_of(conn, self.display)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, _TRANSIENT):
                raise StoreUnavailable(f"cannot reach {self.display}: {_describe(exc)}") from None
            if isinstance(exc, asyncpg.PostgresError) and _refuses_writes(exc):
                raise self._refusing(exc) from None
            raise
        return pool

    async def ingest(self, rows: Sequence[Row]) -> IngestResult:
        if not rows:
            return IngestResult(0, 0)
        pool = await self._get_pool()
        try:
            inserted = await self._insert(pool, rows)
        except _TRANSIENT as exc:
            raise StoreUnavailable(f"store {self.display}: {_describe(exc)}") from None
        except asyncpg.PostgresError as exc:
            if not is_data_error(exc):
                raise self._refusing(exc) from None
            return await self._insert_one_by_one(pool, rows)
        return IngestResult(inserted, len(rows) - inserted)

    def _refusing(self, exc: asyncpg.PostgresError) -> StoreRefusing:
        return StoreRefusing(f"store {self.display} refuses writes (SQLSTATE "
                             f"{getattr(exc, 'sqlstate', None) or '?'}): {_describe(exc)}")

    async def _insert(self, pool: asyncpg.Pool, rows: Sequence[Row]) -> int:
        async with _connection(pool) as conn:
            return await _copy_in(conn, rows)

    async def _insert_one_by_one(self, pool: asyncpg.Pool, rows: Sequence[Row]) -> IngestResult:
        inserted = 0
        rejected: list[Rejected] = []
        for index, row in enumerate(rows):
            try:
                inserted += await self._insert(pool, [row])
            except _TRANSIENT as exc:
                # What was inserted so far stays; the sender resends the batch, which skips it.
                raise StoreUnavailable(f"store {self.display}: {_describe(exc)}") from None
            except asyncpg.PostgresError as exc:
                if not is_data_error(exc):
                    # Not this row's fault after all: the sender resends the whole batch.
                    raise self._refusing(exc) from None
                rejected.append(Rejected(index, f"the store refused it: {_describe(exc)}"))
        return IngestResult(inserted, len(rows) - inserted - len(rejected), rejected)

    async def fetch(self, sql: str, *params: object) -> list[Row]:
        pool = await self._get_pool()
        try:
            async with _connection(pool) as conn:
                records = await conn.fetch(sql, *params)
        except _TRANSIENT as exc:
            raise StoreUnavailable(f"store {self.display}: {_describe(exc)}") from None
        return [tuple(r) for r in records]

    async def payloads(self, types: Sequence[str], since_ms: int | None) -> AsyncIterator[bytes]:
        where, params = payload_filter(types, since_ms)
        pool = await self._get_pool()
        # The payload column is JSON, which keeps the text it was given: the sender's bytes.
        sql = f"SELECT payload::text FROM events{where} ORDER BY seq"
        try:
            async with _connection(pool) as conn, conn.transaction(readonly=True):
                async for record in conn.cursor(sql, *params, prefetch=1000):
                    yield record[0].encode()
        except _TRANSIENT as exc:
            raise StoreUnavailable(f"store {self.display}: {_describe(exc)}") from None

    async def ping(self) -> None:
        pool = await self._get_pool()
        try:
            async with _connection(pool) as conn:
                await conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_S)
        except _TRANSIENT as exc:
            raise StoreUnavailable(f"store {self.display}: {_describe(exc)}") from None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


@contextlib.asynccontextmanager
async def _connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection that is closed, not reused, when its protocol state broke (the
    server ended the session while it idled in the pool): the pool opens a new one."""
    async with pool.acquire() as conn:
        try:
            yield conn
        except (asyncpg.InternalClientError, asyncpg.InterfaceError):
            conn.terminate()
            raise


async def _copy_in(conn: asyncpg.Connection, rows: Sequence[Row]) -> int:
    """Insert ``rows``, skipping those stored already; the number inserted."""
    try:
        await conn.copy_records_to_table("events", records=rows, columns=_COLUMN_NAMES)
        return len(rows)
    except asyncpg.UniqueViolationError:
        pass  # a resend: some of these are stored already
    async with conn.transaction():
        await conn.copy_records_to_table(STAGING, records=rows, columns=_COLUMN_NAMES)
        status: str = await conn.execute(_INSERT)
    return int(status.rsplit(" ", 1)[1])  # "INSERT 0 <n>"


async def _prepare_connection(conn: asyncpg.Connection) -> None:
    """Every new pooled connection gets its staging table (temporary: per connection)."""
    await conn.execute(_CREATE_STAGING)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection goes back to the pool with: asyncpg's default reset is one more round
    trip after every batch (``RESET ALL; CLOSE ALL; UNLISTEN *; pg_advisory_unlock_all()``),
    5 % of the collector's CPU and some of PostgreSQL's, to undo what this store never does
    (it sets nothing on a session, holds no cursor outside a transaction, listens to nothing,
    takes only transaction-level locks). An open transaction is still rolled back by the pool
    before this is called."""


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
