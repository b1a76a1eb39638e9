"""A real headless Chromium through chromedriver (Debian's ``chromium`` and
``chromium-driver``), for the pages the report and the collector serve.

Started as the machine notes say for root: no sandbox, no GPU, no background networking (the
machine's closed network refuses it), a fresh profile. Without the binaries a test skips with
a one-line reason, and fails under ``CI=true`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import unavailable

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1300,1000"]


def unavailable_reason() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(path).is_file():
            return f"{path} not found (apt-get install {package})"
    return None


def require_chromium() -> None:
    reason = unavailable_reason()
    if reason is not None:
        unavailable(reason, "Chromium is required under CI=true")


@contextmanager
def chromium() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="cra-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver: Any, url: str, timeout: float = 20,
              authorization: str | None = None) -> list[dict[str, Any]]:
    """Load ``url``, wait until every chart is drawn, and return the console's errors.

    ``authorization`` is sent as the ``Authorization`` header, as a browser sends it after its
    Basic-auth prompt. (Credentials in the URL instead, ``http://user:token@host/``, would
    also reach the log of every console message, and make Chromium treat the page's own URL
    oddly.)
    """
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # what earlier pages logged is not this page's
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {
        "headers": {"Authorization": authorization} if authorization else {}})
    driver.get(url)
    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(
        "return document.documentElement.dataset.charts") == "ready")
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def figures(driver: Any) -> dict[str, int]:
    """The headline figures as the page shows them (the text of each tile's value)."""
    shown = driver.execute_script(
        "return Array.from(document.querySelectorAll('.kpi')).map("
        "k => [k.dataset.figure, k.querySelector('.value').textContent])")
    return {key: int(text.replace(",", "")) for key, text in shown
            if text.replace(",", "").isdigit()}


def screenshot(driver: Any, path: Path, width: int = 1300) -> None:
    """The whole page, not just the window."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 40, 16000))
    driver.save_screenshot(str(path))
