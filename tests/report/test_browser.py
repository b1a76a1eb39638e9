"""The report file and the live dashboard in a real headless Chromium: every chart drawn, no
console error, and the figures shown equal to independent SQL over the same store."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from codex_rpc_analytics.report.web import add_dashboard_routes
from codex_rpc_analytics.store import EventStore, open_reader, open_store
from tests.report import browser
from tests.report.support import HOSTILE_CLIENT, SCOPE, independent_figures

READ_TOKEN = "cra_read_" + "r" * 43
INGEST_TOKEN = "cra_ingest_" + "i" * 43


@pytest.fixture(scope="module")
def driver():  # type: ignore[no-untyped-def]
    browser.require_chromium()
    with browser.chromium() as running:
        yield running


def expected(spec: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        store = await open_reader(spec, None)  # type: ignore[arg-type]
        try:
            return await independent_figures(store, SCOPE)
        finally:
            await store.close()
    return asyncio.run(run())


def write_report(spec: str, output: Path, *extra: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "codex_rpc_analytics", "report", "--store", spec,
         "--since", str(SCOPE.since_ms / 1000), "--until", str(SCOPE.until_ms / 1000),
         "-o", str(output), *extra],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_report_file_opens_offline_and_shows_the_stores_figures(
        driver, sqlite_store: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = tmp_path / "report.html"
    write_report(sqlite_store, page)
    errors = browser.open_page(driver, page.as_uri())
    browser.screenshot(driver, tmp_path / "report.png")
    assert errors == []
    shown = browser.figures(driver)
    want = expected(sqlite_store)
    assert {k: shown[k] for k in want} == want
    # Every chart drew an SVG; a sender's HTML in its client name is shown as text.
    assert driver.execute_script(
        "return Array.from(document.querySelectorAll('.chart')).every("
        "c => c.querySelector('svg') !== null)")
    assert driver.execute_script("return document.querySelectorAll('img').length") == 0
    legend = driver.execute_script(
        "return document.querySelector('#chart-adoption svg').textContent")
    assert HOSTILE_CLIENT[:12] in legend  # drawn as text (labels may be shortened)
    assert (tmp_path / "report.png").stat().st_size > 50_000


def test_an_empty_store_renders_cleanly(driver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = str(tmp_path / "empty.sqlite3")

    async def create() -> None:
        await (await open_store(spec, migrate=True)).close()
    asyncio.run(create())
    page = tmp_path / "empty.html"
    write_report(spec, page)
    assert browser.open_page(driver, page.as_uri()) == []
    text = driver.execute_script("return document.body.innerText")
    assert "No turns in this window." in text
    assert browser.figures(driver)["turns"] == 0
    browser.screenshot(driver, tmp_path / "empty.png")


@pytest.fixture
async def dashboard(postgres_store: str) -> AsyncIterator[tuple[str, EventStore]]:
    store = await open_reader(postgres_store, None)  # type: ignore[arg-type]
    app = web.Application()
    add_dashboard_routes(app, store, {READ_TOKEN: "lead"}.get)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"127.0.0.1:{port}", store
    finally:
        await runner.cleanup()
        await store.close()


async def test_live_dashboard_behind_a_read_token_shows_the_stores_figures(
        driver, dashboard: tuple[str, EventStore], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    host, store = dashboard
    query = f"?since={SCOPE.since_ms // 1000}&until={SCOPE.until_ms // 1000}"
    # WebDriver calls block: they run on a thread while this loop serves the page.
    basic = base64.b64encode(f"lead:{READ_TOKEN}".encode()).decode()
    errors = await asyncio.to_thread(browser.open_page, driver, f"http://{host}/{query}",
                                     authorization=f"Basic {basic}")
    await asyncio.to_thread(browser.screenshot, driver, tmp_path / "live.png")
    assert [e["message"] for e in errors] == []
    shown = await asyncio.to_thread(browser.figures, driver)
    want = await independent_figures(store, SCOPE)
    assert {k: shown[k] for k in want} == want
    assert "Reload the page" in await asyncio.to_thread(
        driver.execute_script, "return document.body.innerText")


async def test_dashboard_refuses_missing_wrong_and_ingest_tokens(
        dashboard: tuple[str, EventStore]) -> None:
    from aiohttp import ClientSession

    host, _ = dashboard
    basic = base64.b64encode(f"x:{READ_TOKEN}".encode()).decode()
    async with ClientSession() as http:
        for headers in ({}, {"Authorization": f"Bearer {INGEST_TOKEN}"},
                        {"Authorization": "Bearer " + READ_TOKEN[:-1]},
                        {"Authorization": f"Basic {READ_TOKEN}"}):
            async with http.get(f"http://{host}/", headers=headers) as answer:
                assert answer.status == 401
                assert answer.headers["WWW-Authenticate"].startswith("Basic ")
                assert READ_TOKEN not in await answer.text()
        for auth in (f"Bearer {READ_TOKEN}", f"Basic {basic}"):
            async with http.get(f"http://{host}/?since=1h",
                                headers={"Authorization": auth}) as answer:
                assert answer.status == 200
                assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
                assert "No turns in this window." in await answer.text()
        async with http.get(f"http://{host}/?since=soon",
                            headers={"Authorization": f"Bearer {READ_TOKEN}"}) as answer:
            assert answer.status == 400
