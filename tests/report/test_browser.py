"""The report file and the live dashboard in a real headless Chromium: every chart drawn, no
console error, and the figures shown equal to independent SQL over the same store."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_rpc_analytics.collector import READ_TOKENS_FILENAME, TOKENS_FILENAME, add_token
from codex_rpc_analytics.store import open_reader, open_store
from tests.report import browser
from tests.report.support import HOSTILE_CLIENT, SCOPE, CollectProcess, independent_figures


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
def collector(postgres_store: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A real collector on the PostgreSQL store: (url, read token, ingest token)."""
    state_dir = tmp_path / "collector"
    read_token = add_token(state_dir / READ_TOKENS_FILENAME, "lead", read=True)
    ingest_token = add_token(state_dir / TOKENS_FILENAME, "laptops")
    collect = CollectProcess(postgres_store, state_dir)
    try:
        yield collect.url, read_token, ingest_token
    finally:
        status, log = collect.stop()
        assert status == 0, log
        assert read_token not in log and ingest_token not in log


def test_live_dashboard_behind_a_read_token_shows_the_stores_figures(
        driver, collector: tuple[str, str, str], postgres_store: str,
        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, read_token, _ = collector
    query = f"?since={SCOPE.since_ms // 1000}&until={SCOPE.until_ms // 1000}"
    # As a browser sends it once its Basic-auth prompt was answered with the token.
    basic = base64.b64encode(f"lead:{read_token}".encode()).decode()
    errors = browser.open_page(driver, f"{url}/{query}", authorization=f"Basic {basic}")
    browser.screenshot(driver, tmp_path / "live.png")
    assert [e["message"] for e in errors] == []
    shown = browser.figures(driver)
    want = expected(postgres_store)
    assert {k: shown[k] for k in want} == want
    assert "Reload the page" in driver.execute_script("return document.body.innerText")


def test_dashboard_wants_a_read_token_and_ingest_wants_an_ingest_token(
        collector: tuple[str, str, str]) -> None:
    url, read_token, ingest_token = collector
    basic = base64.b64encode(f"x:{read_token}".encode()).decode()

    def get(path: str, authorization: str | None) -> tuple[int, dict[str, str], str]:
        request = urllib.request.Request(
            url + path, headers={"Authorization": authorization} if authorization else {})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, dict(answer.headers), answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read().decode()

    for authorization in (None, f"Bearer {ingest_token}", f"Bearer {read_token[:-1]}",
                          f"Basic {read_token}"):
        status, headers, body = get("/", authorization)
        assert status == 401, authorization
        assert headers["WWW-Authenticate"].startswith("Basic ")
        assert read_token not in body
    for authorization in (f"Bearer {read_token}", f"Basic {basic}"):
        status, headers, body = get("/?since=86400&until=172800", authorization)  # 1970
        assert status == 200
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert "No turns in this window." in body
    assert get("/?since=soon", f"Bearer {read_token}")[0] == 400
    # A read token cannot write events.
    post = urllib.request.Request(
        url + "/codex/analytics-events/events", data=b'{"events":[]}', method="POST",
        headers={"Authorization": f"Bearer {read_token}", "Content-Type": "application/json"})
    try:
        urllib.request.urlopen(post, timeout=30)
        raise AssertionError("a read token was accepted for ingest")
    except urllib.error.HTTPError as error:
        assert error.code == 401
