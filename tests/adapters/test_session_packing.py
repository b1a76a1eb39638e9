"""A flooded session packs what it keeps: whatever the chunking, the bytes analysed are the
bytes relayed minus whole bulk lines, and every relayed byte is accounted for in the status
counters in relayed bytes (analysed, bulk skipped, dropped, skipped at the end), never in
packed ones."""

from __future__ import annotations

import base64
import json
import random
import time

from codex_rpc_analytics.adapters.in_process import MemoryDelivery
from codex_rpc_analytics.adapters.session import TapSession
from codex_rpc_analytics.core.tap import Direction
from tests.support import STREAMING

DIRECTIONS: tuple[Direction, Direction] = ("c2s", "s2c")


class HandedSession(TapSession):
    """Notes the bytes each direction's chunks hand to the analyzer, unpacked."""

    def __init__(self, max_backlog_bytes: int) -> None:
        super().__init__(transport="stdio", delivery=MemoryDelivery(),
                         max_backlog_bytes=max_backlog_bytes)
        self.handed: dict[Direction, list[bytes]] = {d: [] for d in DIRECTIONS}

    def _chunk(self, direction: Direction, data: bytes, now: float, gap: bool) -> None:
        self.handed[direction].append(data)
        super()._chunk(direction, data, now, gap)


def _wire(noise: random.Random) -> list[tuple[Direction, bytes]]:
    """The streaming session's lines with bulk deltas between them and answers of random text
    (they compress poorly, so a small bound overflows even packed)."""
    rows = [json.loads(t) for t in (STREAMING / "fakeauth_streaming_deltas.rpc.jsonl")
            .read_text().splitlines()]
    delta = next(r["raw"] for r in rows if "agentMessage/delta" in r.get("raw", "")).encode()
    out: list[tuple[Direction, bytes]] = []
    for index, row in enumerate(rows):
        if row["dir"] in DIRECTIONS:
            out.append((row["dir"], row["raw"].encode() + b"\n"))
        out += [("s2c", delta + b"\n")] * noise.randrange(40)
        if noise.random() < 0.3:
            text = base64.b64encode(noise.randbytes(noise.randrange(100, 6000)))
            out.append(("s2c", b'{"id":"n%d","result":"%s"}\n' % (index, text)))
    return out


def _relay(session: HandedSession, noise: random.Random) -> dict[Direction, bytes]:
    """Relays the wire in random chunks, the directions interleaved, status requests between
    them, analysis now and then (mostly far behind: a flood). Returns what was relayed."""
    relayed: dict[Direction, bytes] = {d: b"" for d in DIRECTIONS}
    pending: dict[Direction, bytes] = {d: b"" for d in DIRECTIONS}
    requests = 0

    def send(direction: Direction, data: bytes) -> None:
        relayed[direction] += data
        session.observe(direction, data, 1.7e9)

    for direction, line in _wire(noise):
        pending[direction] += line
        for side in DIRECTIONS:
            while len(pending[side]) > noise.choice((1, 500, 4096, 70_000)):
                cut = noise.randrange(1, len(pending[side]) + 1)
                send(side, pending[side][:cut])
                pending[side] = pending[side][cut:]
        roll = noise.random()
        if roll < 0.02:
            requests += 1
            session.extension_request(b'{"id":%d,"method":"rpcAnalytics/status"}' % requests,
                                      1.7e9)
        elif roll < 0.2:
            session.process(0.0)  # a line or so: analysis stays behind
        elif roll < 0.21:
            while session.process(1.0):  # the relay idled long enough to catch up
                pass
    for side in DIRECTIONS:
        if pending[side]:
            send(side, pending[side])
    return relayed


def _minus_whole_bulk_lines(session: TapSession, relayed: bytes, analysed: bytes) -> None:
    """``analysed`` is ``relayed`` with whole lines taken out, in order, each one bulk."""
    position = 0
    for line in relayed.splitlines(keepends=True):
        if analysed.startswith(line, position):
            position += len(line)
        else:
            assert line.endswith(b"\n") and not session._bulk_filter.without_bulk(
                [line[:-1]]), line[:80]
    assert position == len(analysed)


def _unaccounted(session: HandedSession, skipped: int) -> int:
    """Relayed bytes that are neither analysed nor counted as skipped, dropped or bulk."""
    total = 0
    for direction in DIRECTIONS:
        counters = session.relay[direction]
        total += (counters.bytes - counters.bulk_skipped_bytes
                  - counters.analytics_dropped_bytes
                  - sum(len(chunk) for chunk in session.handed[direction]))
    return total - skipped


def test_packed_floods_analyse_the_relayed_bytes_minus_whole_bulk_lines() -> None:
    for seed in range(8):
        noise = random.Random(seed)
        session = HandedSession(max_backlog_bytes=1 << 30)
        session.flood_bytes = 16 * 1024  # flooded often, never past the bound
        session.start(lambda _answer: None)
        relayed = _relay(session, noise)
        assert session.finish(time.monotonic() + 60), seed
        assert session.analytics_errors == 0 and session.analytics_skipped_bytes == 0, seed
        assert session.relay["s2c"].packed_bytes > 0, seed
        for direction in DIRECTIONS:
            counters = session.relay[direction]
            assert counters.analytics_dropped_bytes == 0, seed
            analysed = b"".join(session.handed[direction])
            _minus_whole_bulk_lines(session, relayed[direction], analysed)
            assert counters.bulk_skipped_bytes == len(relayed[direction]) - len(analysed)
        assert session.extension_requests == session.answers_expected, seed  # in order


def test_overflowing_then_ending_mid_flood_counts_every_byte_as_relayed_not_packed() -> None:
    for seed in range(8):
        noise = random.Random(100 + seed)
        session = HandedSession(max_backlog_bytes=16 * 1024)
        session.start(lambda _answer: None)
        _relay(session, noise)
        # A burst of lines analytics keeps, no analysis in between: ends while packed.
        burst = b"".join(line for direction, line in _wire(noise)
                         if direction == "s2c" and not line.startswith(b'{"method":"item/a'))
        for start in range(0, 64 * 1024, 4096):
            session.observe("s2c", burst[start : start + 4096], 1.7e9)
        assert sum(session.relay[d].analytics_dropped_chunks for d in DIRECTIONS) > 0, seed
        assert session._packed_queued > 0, seed  # ends while packed chunks wait
        in_progress = sum(len(line) + 1 for line in session._lines[session._line_index:])
        assert session.end() is False
        assert _unaccounted(session, session.analytics_skipped_bytes - in_progress) == 0, seed


def test_a_packed_chunk_dropped_past_the_bound_counts_its_relayed_bytes() -> None:
    noise = random.Random(14)
    session = TapSession(transport="stdio", delivery=MemoryDelivery(),
                         max_backlog_bytes=16 * 1024)
    session.start(lambda _answer: None)
    kept = b'{"id":"a","result":"%s"}\n' % base64.b64encode(noise.randbytes(3000))
    session.observe("s2c", kept, 1.7e9)  # past a 16th of the bound: flooded, packed
    relay = session.relay["s2c"]
    assert relay.packed_bytes == len(kept)
    # Random text then a lot of repeats: packed it is still over the bound, but much smaller.
    big = b'{"id":"b","result":"%s%s"}\n' % (base64.b64encode(noise.randbytes(16 * 1024)),
                                            b"ab" * 200_000)
    session.observe("s2c", big, 1.7e9)
    assert relay.analytics_dropped_chunks == 1
    assert relay.analytics_dropped_bytes == len(big)  # what the user lost, as relayed
    assert relay.packed_bytes == len(kept)  # only what was queued packed
    assert session.end() is False
    assert session.analytics_skipped_bytes == len(kept)  # unpacked
