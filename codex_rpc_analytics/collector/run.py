"""Running a collector process: open the store, listen, serve until SIGTERM or SIGINT.

Collectors are stateless: start as many as the load needs, on one PostgreSQL. With
``reuse_port`` several collectors on one machine listen on the same port and the kernel
spreads connections over them (``SO_REUSEPORT``); when one dies, the others take its new
connections, and what it had not acknowledged is resent by the senders.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TextIO

from aiohttp import web

from ..report.web import add_dashboard_routes
from ..store import StoreUnavailable, open_store
from .server import Collector
from .tokens import TokenBook

# Connections to the store per collector; PostgreSQL's default max_connections is 100.
STORE_CONNECTIONS = 8


async def serve(
    store_spec: str,
    host: str,
    port: int,
    tokens_path: Path,
    *,
    reuse_port: bool = False,
    read_tokens_path: Path | None = None,
    logger: logging.Logger,
    announce: TextIO = sys.stdout,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT). The first line on ``announce`` is
    ``listening on http://HOST:PORT/`` once connections are accepted (the port is the real one
    when 0 was asked). With ``read_tokens_path`` the dashboard is served at ``GET /`` to the
    holders of those read tokens."""
    # wait=False: a database that is down now is answered with 503 until it is up.
    store = await open_store(store_spec, migrate=True, max_connections=STORE_CONNECTIONS,
                             wait=False)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner: web.AppRunner | None = None
    try:
        try:
            await store.ping()
        except StoreUnavailable as exc:  # any other StoreError (auth, bad DSN) is fatal
            logger.warning("store not reachable yet, answering 503 until it is: %s", exc)
        tokens = TokenBook(tokens_path, logger)
        collector = Collector(store, tokens, logger=logger)
        app = collector.app()
        dashboard = ""
        if read_tokens_path is not None:
            readers = TokenBook(read_tokens_path, logger, read=True)
            add_dashboard_routes(app, store, readers.source_of, sqlite_spec=store_spec)
            dashboard = f", dashboard at / for {len(readers)} read tokens"
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        await site.start()
        bound = runner.addresses[0]
        print(f"listening on http://{_host(bound[0])}:{bound[1]}/ (store: {store.display}, "
              f"tokens: {tokens_path}, {len(tokens)} tokens{dashboard})", file=announce,
              flush=True)
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if runner is not None:
            await runner.cleanup()
        await store.close()


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address
