"""One parser for every ``since``/``until`` (the CLI's ``--since``/``--until`` of ``report``
and ``events``, the dashboard's ``?since=``/``?until=``): what is not a moment is a one-line
usage error (exit 2) or a 400, never a traceback or a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from codex_rpc_analytics.report.scope import parse_moment
from codex_rpc_analytics.report.web import add_dashboard_routes
from codex_rpc_analytics.store import open_reader
from tests.report.test_report_cli import run_cli

NOW = 1_796_200_000.0
NOT_MOMENTS = ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "-1h", "-100", "1e20",
               "9999-12-31T23:59:59-05:00", "yesterday", ""]


@pytest.mark.parametrize("text", NOT_MOMENTS)
def test_what_is_not_a_moment_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected unix seconds"):
        parse_moment(text, NOW)


def test_the_forms_a_user_writes() -> None:
    assert parse_moment("7d", NOW) == NOW - 7 * 86400
    assert parse_moment("1.5h", NOW) == NOW - 5400
    assert parse_moment("0", NOW) == 0.0
    assert parse_moment("1796200000", NOW) == NOW
    assert parse_moment("2026-12-02T00:00:00Z", NOW) == 1_796_169_600.0
    assert parse_moment("100000000d", NOW) == 0.0  # an age before 1970: from the start


@pytest.mark.parametrize(("args", "message"), [
    (["report", "--since", "nan", "-o", "x.html"], "--since nan: expected"),
    (["report", "--since", "0", "--until", "inf", "-o", "x.html"], "--until inf: expected"),
    (["report", "--since=-1d", "-o", "x.html"], "--since -1d: expected"),
    (["events", "--since", "nan"], "--since nan: expected"),
    (["events", "--since", "1e400"], "--since 1e400: expected"),
])
def test_the_cli_says_so_in_one_line(args: list[str], message: str, sqlite_store: str,
                                     tmp_path: Path) -> None:
    done = run_cli(*args[:1], "--store", sqlite_store, *args[1:], state_dir=tmp_path)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert message in done.stderr, done.stderr


async def test_the_dashboard_answers_400(sqlite_store: str) -> None:
    store = await open_reader(sqlite_store, Path("unused"))
    app = web.Application()
    add_dashboard_routes(app, store, {"cra_read_t": "lead"}.get, clock=lambda: NOW)
    auth = {"Authorization": "Bearer cra_read_t"}
    try:
        async with TestClient(TestServer(app)) as client:
            for query in ("since=nan", "since=inf", "until=nan", "since=-1h", "since=1e400",
                          "since=1e20", "until=-5"):
                response = await client.get(f"/?{query}", headers=auth)
                assert response.status == 400, query
                name = query.split("=")[0]
                assert (await response.text()).startswith(f"{name}: expected unix seconds")
            assert (await client.get("/?since=2026-11-01T00:00:00Z", headers=auth)).status == 200
    finally:
        await store.close()
