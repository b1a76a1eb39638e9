"""The in-process proxy with the delivery its docs ask for: anything with ``submit``,
``status`` and ``flush`` (``delivery.Delivery``'s ``uncommitted`` is an optional extra)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from codex_rpc_analytics.adapters.in_process import InProcessProxy, MemoryWriter


class ListDelivery:
    """A host's own delivery, as docs/client.md and the module docstring describe one."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def submit(self, events: Any) -> None:
        self.events.extend(events)

    def status(self) -> dict[str, Any]:
        return {"kind": "list", "submitted": len(self.events)}

    def flush(self, timeout: float) -> dict[str, Any]:
        return {"complete": True, "uncommitted": 0, "sinks": {}}


async def _drain(reader: asyncio.StreamReader, _writer: MemoryWriter) -> None:
    while await reader.read(1 << 16):
        pass


async def test_a_status_request_behind_a_long_analysis_is_answered_with_a_plain_delivery(
) -> None:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: errors.append(context))
    delivery = ListDelivery()
    proxy = InProcessProxy(_drain, delivery=delivery, max_backlog_bytes=1 << 30)
    # Many slices of analysis (answers are analysed line by line), then a status request.
    answers = b"".join(b'{"id":%d,"result":{"text":"%s"}}\n' % (n, b"y" * 300)
                       for n in range(20_000))
    async with proxy as conn:
        await conn.send(answers)
        await conn.send(b'{"id":"s","method":"rpcAnalytics/status"}\n')
        answer = json.loads(await asyncio.wait_for(conn.receive(), 10))  # fail, not hang
    assert answer["id"] == "s"
    assert answer["result"]["relay"]["c2s"]["bytes"] == len(answers)
    assert answer["result"]["delivery"] == {"kind": "list", "submitted": 0}
    assert errors == []
