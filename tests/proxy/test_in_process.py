"""The proxy's logic over in-memory streams: relay semantics, extension methods, status."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from codex_rpc_analytics.adapters.in_process import (
    InProcessProxy,
    MemoryDelivery,
    MemoryWriter,
)
from codex_rpc_analytics.examples.scripted_server import Script, serve
from tests.proxy.support import mixed_session
from tests.support import recorded_events, transcript

THREAD_INITIALIZED = "codex_thread_initialized"


async def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition another thread makes true; fail rather than hang."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def chunks(data: bytes, sizes: tuple[int, ...]) -> list[bytes]:
    out, start, index = [], 0, 0
    while start < len(data):
        size = sizes[index % len(sizes)]
        out.append(data[start : start + size])
        start += size
        index += 1
    return out


@pytest.mark.parametrize("sizes", [(1 << 20,), (1, 7, 300, 65537), (4096,)])
async def test_mixed_session_is_relayed_exactly_in_any_chunking(tmp_path: Path,
                                                                sizes: tuple[int, ...]) -> None:
    script = Script.load(mixed_session(tmp_path / "mixed.rpc.jsonl"))
    sent = b"".join(line + b"\n" for line in script.client_lines())
    server_received = bytearray()
    delivery = MemoryDelivery()
    proxy = InProcessProxy(partial(serve, script, received=server_received), delivery=delivery)
    async with proxy as conn:
        for piece in chunks(sent, sizes):
            await conn.send(piece)
    received = await conn.reader.read()
    assert bytes(server_received) == sent
    assert received == b"".join(line + b"\n" for line in script.server_lines())
    threads = [payload for kind, payload in delivery.events if kind == THREAD_INITIALIZED]
    assert threads == [line.replace(b'"rpc_transport":"stdio"', b'"rpc_transport":"in_process"')
                       for line in recorded_events("fakeauth_full_flow", THREAD_INITIALIZED)]


async def _request(conn: object, line: bytes) -> dict[str, object]:
    from codex_rpc_analytics.adapters.in_process import InProcessConnection

    assert isinstance(conn, InProcessConnection)
    await conn.send(line)
    answer: dict[str, object] = json.loads(await asyncio.wait_for(conn.receive(), 10))
    return answer


async def test_extension_methods_answered_in_app_server_style() -> None:
    script = Script.load(transcript("fakeauth_full_flow"))
    received = bytearray()
    async with InProcessProxy(partial(serve, script, received=received)) as conn:
        status = await conn.send(b'{"id":1,"method":"rpcAnalytics/status"}\n')
        raw = await asyncio.wait_for(conn.receive(), 10)
        assert raw.startswith(b'{"id":1,"result":{"proxy":{')
        status = json.loads(raw)["result"]
        assert status["proxy"]["transport"] == "in_process"
        assert set(status) == {"proxy", "relay", "analyzer", "events", "delivery", "recording"}
        assert status["recording"] is None  # none asked for
        unknown = await conn.send(b'{"id":"u","method":"rpcAnalytics/nope","params":{}}\n')
        assert await asyncio.wait_for(conn.receive(), 10) == (
            b'{"error":{"code":-32600,"message":"Invalid request: unknown variant '
            b'`rpcAnalytics/nope`, expected one of `rpcAnalytics/status`, '
            b'`rpcAnalytics/flush`"},"id":"u"}')
        await conn.send(b'{"id":2,"method":"rpcAnalytics/status","params":[1]}\n')
        assert json.loads(await asyncio.wait_for(conn.receive(), 10)) == {
            "error": {"code": -32600, "message": "Invalid request: params must be an object"},
            "id": 2}
        # A notification in the namespace is swallowed; the flush answer follows.
        await conn.send(b'{"method":"rpcAnalytics/flush"}\n{"id":3,"method":"rpcAnalytics/flush"'
                        b',"params":{"timeoutMs":100}}\n')
        assert json.loads(await asyncio.wait_for(conn.receive(), 10)) == {
            "id": 3, "result": {"complete": True, "uncommitted": 0, "sinks": {}}}
        # A null id makes it a notification (as codex reads it): no answer either.
        await conn.send(b'{"id":null,"method":"rpcAnalytics/status"}\n')
        del status, unknown
    assert b"rpcAnalytics" not in received
    assert await conn.reader.read() == b""


async def test_answers_are_injected_only_at_a_line_boundary_of_the_server() -> None:
    release = asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: MemoryWriter) -> None:
        writer.write(b'{"method":"first","params":{"half":')  # a line in transfer
        await release.wait()
        writer.write(b'"done"}}\n')
        await writer.drain()
        writer.write(b'{"method":"second"}\n')
        await reader.read()

    proxy = InProcessProxy(server)
    async with proxy as conn:
        await conn.send(b'{"id":7,"method":"rpcAnalytics/status"}\n')
        await wait_for(lambda: proxy.session.extension_answers == 1)
        await asyncio.sleep(0)  # the answer's hop onto the loop runs: it waits for a boundary
        release.set()
        first = await asyncio.wait_for(conn.receive(), 10)
        assert first == b'{"method":"first","params":{"half":"done"}}'
        answer = json.loads(await asyncio.wait_for(conn.receive(), 10))
        assert answer["id"] == 7
        assert await asyncio.wait_for(conn.receive(), 10) == b'{"method":"second"}'


async def test_a_long_partial_line_streams_through_and_is_never_held() -> None:
    got = bytearray()
    seen = asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: MemoryWriter) -> None:
        while chunk := await reader.read(1 << 20):
            got.extend(chunk)
            if len(got) >= 100_000:
                seen.set()

    async with InProcessProxy(server) as conn:
        # 100 kB of a line with no newline yet: past the 64 KiB hold limit, it must flow.
        await conn.send(b'{"id":1,"method":"x","params":"' + b"a" * 100_000)
        await asyncio.wait_for(seen.wait(), 10)
        # A short partial line that does not start with '{' cannot be a request: not held.
        await conn.send(b'"tail"\n   not json yet')
        await conn.send(b"\n")
    assert got.endswith(b'"tail"\n   not json yet\n')


async def test_a_flood_of_bulk_is_skipped_and_every_event_still_comes() -> None:
    script = Script.load(transcript("fakeauth_full_flow"))
    bulk = b'{"method":"item/agentMessage/delta","params":{"delta":"' + b"x" * 200 + b'"}}\n'
    lines = script.client_lines()
    sent = bulk * 5000 + b"".join(line + b"\n" for line in lines)
    received = bytearray()
    delivery = MemoryDelivery()
    proxy = InProcessProxy(partial(serve, script, received=received), delivery=delivery,
                           max_backlog_bytes=300_000)
    async with proxy as conn:
        await conn.send(sent)
    assert bytes(received) == sent  # the relay is untouched
    relay = proxy.session.relay["c2s"]
    assert relay.bytes == len(sent) and relay.analytics_dropped_bytes == 0
    # Past a 16th of the bound, whole bulk lines are taken out (those cut by a chunk boundary stay).
    # So is the client's `initialized` notification, which the tap does not read either.
    assert relay.bulk_skipped_lines > 1000
    assert relay.bulk_skipped_bytes == ((relay.bulk_skipped_lines - 1) * len(bulk)
                                        + len(b'{"method":"initialized"}\n'))
    assert [kind for kind, _ in delivery.events] == [
        json.loads(line)["event_type"] for line in recorded_events("fakeauth_full_flow")]


async def test_analytics_backlog_overflow_never_touches_the_relay_and_resyncs() -> None:
    script = Script.load(transcript("fakeauth_full_flow"))
    # Answers are never bulk: past the whole bound they are dropped unanalysed (random text:
    # packing a flooded backlog cannot shrink it below the bound).
    noise = base64.b64encode(random.Random(14).randbytes(150_000))
    junk = b'{"id":"junk","result":"' + noise + b'"}\n'
    lines = script.client_lines()
    sent = junk * 5 + b"".join(line + b"\n" for line in lines)
    received = bytearray()
    delivery = MemoryDelivery()
    proxy = InProcessProxy(partial(serve, script, received=received), delivery=delivery,
                           max_backlog_bytes=300_000)
    async with proxy as conn:
        await conn.send(sent)
    assert bytes(received).endswith(b"".join(line + b"\n" for line in lines))
    relay = proxy.session.relay["c2s"]
    assert relay.bytes == len(sent)
    assert relay.analytics_dropped_bytes > 0


async def test_record_and_redact_in_process(tmp_path: Path) -> None:
    script = Script.load(transcript("fakeauth_full_flow"))
    recording = tmp_path / "in-process.rpc.jsonl"
    delivery = MemoryDelivery()
    async with InProcessProxy(partial(serve, script), delivery=delivery, record=recording,
                              redact=True) as conn:
        await conn.send(b"".join(line + b"\n" for line in script.client_lines()))
    meta = json.loads(json.loads(recording.read_bytes().split(b"\n")[0])["raw"])
    assert meta["transport"] == "in_process" and meta["redacted"] is True
    assert b"say ok" not in recording.read_bytes()
    assert len(delivery.events) == len(recorded_events("fakeauth_full_flow"))
