"""A developer's local outbox, read as a store: the same queries as a collector's store.

The outbox (``delivery/outbox.py``) keeps what shipping needs, not the query schema. For
queries, its events are copied once into a private in-memory store with the same rows a
collector would store for them (source ``local``, received at their commit time), so
``stats`` and the report read a local outbox and a team's store through one query text.
A laptop's outbox holds days to weeks of one developer's events: the copy takes well under a
second. ``events`` streams straight from the outbox, exact bytes, without the copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from ..delivery import Outbox, OutboxError, SinkCounts
from .base import EventStore, IngestResult, Row, StoreError
from .fields import NotAnEvent, make_row
from .sqlite import SqliteStore

LOCAL_SOURCE = "local"
_COPY_CHUNK = 5000


class OutboxView(EventStore):
    dialect = "sqlite"

    def __init__(self, state_dir: Path, outbox: Outbox) -> None:
        self._state_dir = state_dir
        self._outbox = outbox
        self.display = str(outbox.path)
        self._copy: SqliteStore | None = None
        self._copying = asyncio.Lock()

    @classmethod
    def open(cls, state_dir: Path) -> OutboxView:
        try:
            return cls(state_dir, Outbox.open_readonly(state_dir))
        except OutboxError as exc:
            raise StoreError(str(exc)) from None

    def sink_counts(self) -> dict[str, SinkCounts]:
        return self._outbox.sink_counts()

    async def _query_copy(self) -> SqliteStore:
        async with self._copying:
            if self._copy is None:
                copy = await SqliteStore.open(":memory:", migrate=True)
                last = 0
                while True:
                    chunk = self._outbox.query(
                        "SELECT seq, event_id, payload, created_at FROM events WHERE seq > ?"
                        " ORDER BY seq LIMIT ?", (last, _COPY_CHUNK))
                    if not chunk:
                        break
                    last = chunk[-1][0]
                    rows = []
                    for _, event_id, payload, created_at in chunk:
                        try:
                            rows.append(make_row(LOCAL_SOURCE, event_id, bytes(payload),
                                                 int(created_at * 1000)))
                        except NotAnEvent:
                            continue  # the core never produces one; nothing to count it in
                    await copy.ingest(rows)
                self._copy = copy
            return self._copy

    async def ingest(self, rows: Sequence[Row]) -> IngestResult:
        raise StoreError("a local outbox is read-only here; events reach it through a proxy")

    async def fetch(self, sql: str, *params: object) -> list[Row]:
        return await (await self._query_copy()).fetch(sql, *params)

    async def payloads(self, types: Sequence[str], since_ms: int | None) -> AsyncIterator[bytes]:
        since = since_ms / 1000 if since_ms is not None else None
        for payload in self._outbox.payloads(types, since):
            yield payload

    async def ping(self) -> None:
        self._outbox.event_count()

    async def close(self) -> None:
        if self._copy is not None:
            await self._copy.close()
        self._outbox.close()
