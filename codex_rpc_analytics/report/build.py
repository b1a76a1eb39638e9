"""Building a report: run the panels' queries on a store, render the page.

:func:`build_report` is what both faces use: ``codex-rpc-analytics report`` writes its result
to a file, and the collector's dashboard route (:mod:`.web`) serves it.
"""

from __future__ import annotations

import asyncio
import time

from ..store import EventStore
from .assets import vega_bundle
from .page import PageContext, render_page
from .panels import run_panels
from .scope import Scope


async def build_report(store: EventStore, scope: Scope, *, live: bool = False,
                       now_ms: int | None = None) -> str:
    """The whole page for ``scope``; the store does the aggregation, this only renders."""
    # The bundle is made once per process (or read from the cache) off the event loop, while
    # the store answers the queries.
    bundle_job = asyncio.create_task(asyncio.to_thread(vega_bundle))
    try:
        data = await run_panels(store, scope)
    finally:
        bundle = await bundle_job
    context = PageContext(scope=scope, store=store.display,
                          generated_at_ms=now_ms if now_ms is not None
                          else int(time.time() * 1000), live=live)
    return render_page(data, context, bundle)
