"""One pipeline, two producers: the in-process proxy and the client share one ``Delivery``."""

from __future__ import annotations

import json
from collections import Counter
from functools import partial
from pathlib import Path

from codex_rpc_analytics.adapters.in_process import InProcessProxy
from codex_rpc_analytics.client import AnalyticsEventsClient, AppInvocation, TrackEventsContext
from codex_rpc_analytics.delivery import Delivery, parse_sink_spec
from codex_rpc_analytics.examples.scripted_server import Script, serve
from tests.client.helpers import recorded_exchanges
from tests.support import transcript

SESSION = "fakeauth_full_flow"


async def test_proxy_and_client_events_share_one_outbox_and_sink(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    delivery = Delivery(state_dir=tmp_path / "state", sinks=[parse_sink_spec(f"jsonl:{out}")],
                        batch_linger_s=0.01)
    delivery.start()
    client = AnalyticsEventsClient(delivery, close_at_exit=False)  # the host owns delivery

    script = Script.load(transcript(SESSION))
    async with InProcessProxy(partial(serve, script), delivery=delivery) as conn:
        for line in script.client_lines():
            await conn.send(line + b"\n")
        # Meanwhile the host reports the same session through the client (in-process too).
        for exchange in recorded_exchanges(SESSION):
            if exchange.method == "initialize":
                client.track_initialize(9, exchange.params, exchange.result,
                                        transport="in_process")
            else:
                client.track_response(9, exchange.method, exchange.result,
                                      params=exchange.params)
        thread_id = "01a21287-1c84-7ee1-a8f6-7acf558e5cbc"
        turn = TrackEventsContext(thread_id, "turn-x", "gpt-6.1-sol")
        client.track_app_used(turn, AppInvocation("calendar", "Calendar", "explicit"))
    assert (await client.flush_async(10)).complete
    assert (await delivery.close_async(10)).complete

    lines = out.read_bytes().splitlines()
    kinds = Counter(json.loads(line)["event_type"] for line in lines)
    assert kinds["codex_app_used"] == 1
    assert kinds["codex_turn_event"] == 3  # from the proxy only
    # The same four thread events from each producer, byte for byte.
    threads = Counter(line for line in lines if b'"codex_thread_initialized"' in line)
    assert len(threads) == 4 and set(threads.values()) == {2}
