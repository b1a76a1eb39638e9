"""Make docs/report.png: the report over a generated month of a team's traffic, as Chromium
draws it.

    .venv/bin/python -P tests/report/screenshot.py docs/report.png

(``-P`` and the paths below keep the installed package in use, as the tests do.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import browser  # noqa: E402
from traffic import month_of_traffic  # noqa: E402

from codex_rpc_analytics.store import make_row, open_store  # noqa: E402

END_MS = 1_796_200_000_000


async def fill(spec: str, events: int) -> None:
    store = await open_store(spec, migrate=True)
    try:
        rows = [make_row(g.source, g.event_id, g.payload, g.received_at_ms)
                for g in month_of_traffic(events, END_MS, seed=11, developers=60)]
        for start in range(0, len(rows), 5000):
            await store.ingest(rows[start:start + 5000])
    finally:
        await store.close()


def main(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        spec, page = str(Path(tmp) / "team.sqlite3"), Path(tmp) / "report.html"
        asyncio.run(fill(spec, 60_000))
        subprocess.run([sys.executable, "-P", "-m", "codex_rpc_analytics", "report", "--store",
                        spec, "--since", str(END_MS // 1000 - 30 * 86400), "--until",
                        str(END_MS // 1000), "-o", str(page)], check=True)
        with browser.chromium() as driver:
            errors = browser.open_page(driver, page.as_uri())
            assert errors == [], errors
            browser.screenshot(driver, target, width=1280)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
