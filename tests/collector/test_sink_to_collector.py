"""Our HTTP sink against our collector (aiohttp's test server, a SQLite store): the pair that
every team runs. A batch over the collector's limit is answered 413; the sink splits it and
everything arrives once."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from codex_rpc_analytics.collector import MAX_BODY_BYTES, Collector, TokenBook, add_token
from codex_rpc_analytics.delivery import Delivery, HttpSinkSpec, RetryPolicy
from codex_rpc_analytics.store import open_store
from tests.delivery.support import make_event, outbox_rows


def status_recorder(statuses: list[int]) -> Any:
    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        statuses.append(response.status)
        return response

    return record


async def test_a_batch_over_the_limit_is_split_by_the_sink_and_all_arrives(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    tokens = tmp_path / "tokens"
    token_file = tmp_path / "collector.token"
    token_file.write_text(add_token(tokens, "alice") + "\n")
    token_file.chmod(0o600)
    store = await open_store(str(tmp_path / "team.sqlite3"), migrate=True)
    logger = logging.getLogger("test.collector")
    statuses: list[int] = []
    app = Collector(store, TokenBook(tokens, logger), logger=logger).app()
    app.middlewares.append(status_recorder(statuses))
    client = await aiohttp_client(app)
    url = f"http://127.0.0.1:{client.port}/"
    events = [make_event(n, pad=30_000) for n in range(60)]  # ~1.8 MB: one batch, over 1 MiB
    assert sum(len(p) for _, p in events) > MAX_BODY_BYTES
    delivery = Delivery(
        state_dir=tmp_path / "state", sinks=[HttpSinkSpec(url, token_file=str(token_file))],
        batch_max_events=100, batch_max_bytes=8 * MAX_BODY_BYTES, batch_linger_s=0.05,
        retry_policy=RetryPolicy(base_s=0.02, cap_s=0.1, retry_after_cap_s=0.3,
                                 timeout_total_s=5.0, timeout_connect_s=1.0))
    delivery.start()
    try:
        delivery.submit(events)
        result = await delivery.close_async(20)  # returns once all is delivered (or at 20 s)
        assert result.complete, result
        payloads = [r[0] for r in await store.fetch("SELECT payload FROM events ORDER BY seq")]
    finally:
        await store.close()
    assert statuses[0] == 413 and statuses.count(200) >= 2  # refused whole, accepted in parts
    assert outbox_rows(tmp_path / "state", "SELECT state, COUNT(*) FROM deliveries GROUP BY 1"
                       ) == [("delivered", len(events))]
    assert payloads == [p.decode() for _, p in events]  # each once, in order
