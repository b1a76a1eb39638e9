"""``--store`` values: which store a command reads or the collector writes.

* ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DB`` (or ``postgres://``): a PostgreSQL store
  (libpq's URI form, as asyncpg reads it; ``?sslmode=…`` and the like pass through);
* ``sqlite:PATH`` or a plain ``PATH``: a SQLite store file;
* no ``--store``: for ``collect`` the embedded default, ``collector.sqlite3`` in the state
  directory; for ``stats`` and ``events`` the local outbox of the state directory.
"""

from __future__ import annotations

from pathlib import Path

from .base import EventStore
from .outbox_view import OutboxView
from .postgres import PostgresStore
from .sqlite import SqliteStore

DEFAULT_STORE_FILENAME = "collector.sqlite3"


def is_postgres(spec: str) -> bool:
    return spec.startswith(("postgresql://", "postgres://"))


def sqlite_path(spec: str) -> Path:
    return Path(spec.removeprefix("sqlite:")).expanduser()


async def open_store(
    spec: str, *, migrate: bool, max_connections: int = 10, wait: bool = True
) -> EventStore:
    """Open the store ``spec`` names. ``migrate``: create or upgrade its schema (the collector;
    readers never write). Raises :class:`~.base.StoreError` with a one-line message."""
    if is_postgres(spec):
        return await PostgresStore.open(spec, migrate=migrate, max_connections=max_connections,
                                        wait=wait)
    return await SqliteStore.open(sqlite_path(spec), migrate=migrate)


async def open_reader(spec: str | None, state_dir: Path) -> EventStore:
    """What ``stats``, ``events`` (and the report) read: ``spec``, else the local outbox."""
    if spec is None:
        return OutboxView.open(state_dir)
    return await open_store(spec, migrate=False)
