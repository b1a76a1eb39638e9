"""A loopback analytics collector in its own process, as a real local collector would be.

Prints its port on stdout, then serves ``POST …/codex/analytics-events/events`` (200 ``{}``)
counting events, and ``GET /_bench/count`` / ``POST /_bench/latency?ms=N`` for the benchmark.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web


class Collector:
    def __init__(self) -> None:
        self.events = 0
        self.latency_s = 0.0

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        self.events += body.count(b'{"event_type":')
        return web.json_response({})

    async def count(self, request: web.Request) -> web.Response:
        return web.json_response({"events": self.events})

    async def set_latency(self, request: web.Request) -> web.Response:
        self.latency_s = float(request.query["ms"]) / 1000
        return web.json_response({})


async def main() -> None:
    collector = Collector()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/_bench/count", collector.count)
    app.router.add_post("/_bench/latency", collector.set_latency)
    app.router.add_post("/{tail:.*}", collector.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
