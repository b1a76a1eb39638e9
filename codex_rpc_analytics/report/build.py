"""Building a report: run the panels' queries on a store, render the page.

:func:`build_report` is what both faces use: ``codex-rpc-analytics report`` writes its result
to a file, and the collector's dashboard route (:mod:`.web`) serves it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

from ..store import EventStore, SqliteStore, open_reader
from .assets import vega_bundle
from .page import PageContext, render_page
from .panels import PARALLEL_QUERIES, run_panels
from .scope import Scope


async def open_lanes(spec: str | None, state_dir: Path) -> list[EventStore]:
    """The connections a report reads through: a PostgreSQL store or a local outbox once (a
    pool, or a private in-memory copy); a SQLite store file once per
    :data:`~.panels.PARALLEL_QUERIES`, each read-only connection on its own thread, so the
    panels' queries use both cores."""
    first = await open_reader(spec, state_dir)
    lanes = [first]
    try:
        if isinstance(first, SqliteStore) and spec is not None:
            while len(lanes) < PARALLEL_QUERIES:
                lanes.append(await open_reader(spec, state_dir))
    except BaseException:
        await close_lanes(lanes)
        raise
    return lanes


async def close_lanes(lanes: Sequence[EventStore]) -> None:
    for store in lanes:
        await store.close()


async def build_report(stores: EventStore | Sequence[EventStore], scope: Scope, *,
                       live: bool = False, now_ms: int | None = None) -> str:
    """The whole page for ``scope``; the store does the aggregation, this only renders.
    ``stores``: one store, or several read connections to it (:func:`open_lanes`)."""
    # The bundle is made once per process (or read from the cache) off the event loop, while
    # the store answers the queries.
    bundle_job = asyncio.create_task(asyncio.to_thread(vega_bundle))
    try:
        data = await run_panels(stores, scope)
    finally:
        bundle = await bundle_job
    display = (stores if isinstance(stores, EventStore) else stores[0]).display
    context = PageContext(scope=scope, store=display,
                          generated_at_ms=now_ms if now_ms is not None
                          else int(time.time() * 1000), live=live)
    return render_page(data, context, bundle)
