"""Stores the report tests share: filled once per run, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.pgserver import PgServer
from tests.report.support import fill_store, store_rows


@pytest.fixture(scope="session")
def report_rows() -> list[tuple[Any, ...]]:
    return store_rows()


def new_database(server: PgServer) -> str:
    name = f"r_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(server.dsn)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    asyncio.run(create())
    return server.dsn.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory,
                 report_rows: list[tuple[Any, ...]]) -> Iterator[str]:
    spec = str(tmp_path_factory.mktemp("report") / "team.sqlite3")
    fill_store(spec, report_rows)
    yield spec
    Path(spec).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def postgres_store(pg_server: PgServer, report_rows: list[tuple[Any, ...]]) -> str:
    spec = new_database(pg_server)
    fill_store(spec, report_rows)
    return spec


@pytest.fixture(params=["sqlite", "postgresql"])
def store_spec(request: pytest.FixtureRequest) -> str:
    """The same events in a SQLite store and in a PostgreSQL one."""
    name = "sqlite_store" if request.param == "sqlite" else "postgres_store"
    return str(request.getfixturevalue(name))
