"""A DSN's password, in any of its forms (the userinfo, a ``password`` or ``sslpassword``
query parameter), never shows: not in a log line, an error, ``stats``, the report file or the
dashboard page. Real PostgreSQL (it trusts loopback, so any password connects)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from codex_rpc_analytics.report.web import add_dashboard_routes
from codex_rpc_analytics.store import open_store, redact_dsn
from tests.collector.test_collect_cli import CollectProcess

SECRET = "Hunter2-s3cret"


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (f"postgresql://u:{SECRET}@h:5432/db", "postgresql://u:***@h:5432/db"),
        (f"postgresql://u@h/db?password={SECRET}", "postgresql://u@h/db?password=***"),
        (f"postgresql://u@h/db?sslmode=require&sslpassword={SECRET}",
         "postgresql://u@h/db?sslmode=require&sslpassword=***"),
        (f"postgres://h/db?PASSWORD={SECRET}&user=a", "postgres://h/db?PASSWORD=***&user=a"),
        (f"postgresql://h/db?pass%77ord={SECRET}", "postgresql://h/db?pass%77ord=***"),
        # Unencoded '@', '/', '?', '#' in a password, multiple hosts.
        (f"postgresql://u:a@{SECRET}@h1:1,h2:2/db", "postgresql://u:***@h1:1,h2:2/db"),
        (f"postgresql://u:a/?#{SECRET}@h/db", "postgresql://u:***@h/db"),
        (f"postgresql://u@h/db?password=a#{SECRET}&x=1", "postgresql://u@h/db?password=***&x=1"),
        (f"not a dsn {SECRET}", "***"),
    ],
)
def test_every_password_form_is_masked(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


def secret_dsns(pg_dsn: str) -> list[str]:
    """The same database, with a password in each place a DSN can hold one."""
    return [pg_dsn.replace("postgres@", f"postgres:{SECRET}@"),
            f"{pg_dsn}?password={SECRET}",
            f"{pg_dsn}?sslmode=disable&sslpassword={SECRET}"]


def cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CODEX_RPC_ANALYTICS_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "codex_rpc_analytics", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_no_password_in_the_collector_log_stats_or_the_report(pg_dsn: str,
                                                              tmp_path: Path) -> None:
    for n, dsn in enumerate(secret_dsns(pg_dsn)):
        state = tmp_path / f"state{n}"
        collect = CollectProcess("--store", dsn, state_dir=state)
        code, log = collect.stop()
        assert code == 0, log
        assert SECRET not in log and "***" in log and "listening on" in log
        stats = cli("stats", "--store", dsn, state_dir=state)
        assert stats.returncode == 0, stats.stderr
        assert SECRET not in stats.stdout + stats.stderr and "***" in stats.stdout
        page = tmp_path / f"report{n}.html"
        report = cli("report", "--store", dsn, "--since", "0", "-o", str(page), state_dir=state)
        assert report.returncode == 0, report.stderr
        text = page.read_text(encoding="utf-8")
        assert SECRET not in text + report.stderr and "***" in text
    # An error about the store names it masked as well.
    broken = secret_dsns(pg_dsn)[1].replace("/t_", "/missing_t_")
    failed = cli("stats", "--store", broken, state_dir=tmp_path / "state")
    assert failed.returncode == 1 and SECRET not in failed.stderr and "***" in failed.stderr


async def test_no_password_on_the_dashboard_page(pg_dsn: str) -> None:
    await (await open_store(pg_dsn, migrate=True)).close()
    for dsn in secret_dsns(pg_dsn):
        store = await open_store(dsn, migrate=False)
        app = web.Application()
        add_dashboard_routes(app, store, {"cra_read_t": "lead"}.get)
        try:
            async with TestClient(TestServer(app)) as client:
                page = await client.get("/?since=0", headers={"Authorization": "Bearer cra_read_t"})
                text = await page.text()
        finally:
            await store.close()
        assert page.status == 200
        assert SECRET not in text and "***" in text
