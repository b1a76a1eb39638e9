"""What every store is: the interface the collector, ``stats``, ``events`` and the report use.

A store holds the ``events`` table of :mod:`.schema`. Three kinds implement it:

* :class:`~.postgres.PostgresStore`: PostgreSQL through asyncpg; what a team runs, any number
  of collectors on one database;
* :class:`~.sqlite.SqliteStore`: one SQLite file, the collector's embedded default;
* :class:`~.outbox_view.OutboxView`: a developer's local outbox, read as a store.

Queries are plain SQL over the typed columns with ``$1, $2, …`` placeholders (asyncpg's
style; the SQLite stores rewrite them to ``?1, ?2, …``), so one query text serves both
dialects.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

Row = tuple[Any, ...]


class StoreError(Exception):
    """The store cannot be used as asked; the message is one line, fit for a CLI error."""


class StoreUnavailable(StoreError):
    """The store cannot be reached now (down, restarting, overloaded): try again later.
    Nothing of the failed call was committed, or it was committed in full."""


class StoreRefusing(StoreUnavailable):
    """The store answers but refuses every write, whatever the data: a read-only database or
    transaction, a revoked privilege, a dropped table. An operator must act; the events are not
    at fault, so senders keep them and resend (the collector answers 503), never rejected."""


class Rejected(msgspec.Struct, frozen=True):
    index: int  # position in the ingested rows
    reason: str


class IngestResult(msgspec.Struct, frozen=True):
    inserted: int
    duplicates: int  # already stored (same source and event id): acknowledged, not stored twice
    rejected: list[Rejected] = msgspec.field(default_factory=list)


class EventStore(abc.ABC):
    #: "sqlite" or "postgresql": the SQL dialect of :meth:`fetch`.
    dialect: str
    #: Where the store is, fit for output: never a password.
    display: str

    @abc.abstractmethod
    async def ingest(self, rows: Sequence[Row]) -> IngestResult:
        """Insert rows (from :func:`.fields.make_row`), skipping those already stored.

        Returns once everything inserted is committed. Raises :class:`StoreUnavailable` when
        the store cannot be reached; then nothing was stored, or all of it was (a commit whose
        answer was lost), and inserting the same rows again is always safe.
        """

    @abc.abstractmethod
    async def fetch(self, sql: str, *params: object) -> list[Row]:
        """Run one read query (``$N`` placeholders) and return every row as a tuple."""

    @abc.abstractmethod
    def payloads(self, types: Sequence[str], since_ms: int | None) -> AsyncIterator[bytes]:
        """Each stored event as one compact JSON line (no newline), oldest first, optionally
        only of ``types`` and received at or after ``since_ms``."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the store answers now."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> EventStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def payload_filter(types: Sequence[str], since_ms: int | None) -> tuple[str, list[object]]:
    """The WHERE clause (with ``$N`` placeholders) shared by every store's :meth:`payloads`."""
    where: list[str] = []
    params: list[object] = []
    if types:
        marks = ", ".join(f"${i}" for i in range(1, len(types) + 1))
        where.append(f"event_type IN ({marks})")
        params.extend(types)
    if since_ms is not None:
        params.append(since_ms)
        where.append(f"received_at_ms >= ${len(params)}")
    return (f" WHERE {' AND '.join(where)}" if where else ""), params
