"""The tap pairs answers with requests per (direction, id) and never raises."""

from __future__ import annotations

import functools
import json
import random
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from codex_rpc_analytics.core.facts import (
    Initialized,
    RequestFailed,
    ThreadResponded,
    TurnCompleted,
)
from codex_rpc_analytics.core.tap import Tap
from tests.support import ALL_TRANSCRIPTS, wire_lines

INIT_REQUEST = (b'{"id":0,"method":"initialize","params":{"clientInfo":{"name":"probe",'
                b'"version":"0.0.1"},"capabilities":{"experimentalApi":true}}}')
INIT_RESULT = (b'{"id":0,"result":{"userAgent":"probe/0.169.0 (Debian 12.0.0; x86_64) xterm '
               b'(probe; 0.0.1)","platformOs":"linux"}}')
THREAD_RESULT = b'{"id":%s,"result":{"thread":{"id":"t-1","sessionId":"t-1"},"model":"m"}}'


def test_initialize_pair_becomes_one_fact() -> None:
    tap = Tap(3, "websocket")
    assert tap.observe("c2s", INIT_REQUEST, 1.0) == ()
    (fact,) = tap.observe("s2c", INIT_RESULT, 2.0)
    assert isinstance(fact, Initialized)
    assert fact.connection_id == 3 and fact.transport == "websocket" and fact.observed_at == 2.0
    assert fact.params.client_info is not None and fact.params.client_info.name == "probe"


def test_int_and_string_ids_are_different_requests() -> None:
    tap = Tap(0, "stdio")
    tap.observe("c2s", b'{"id":1,"method":"thread/start","params":{}}', 1.0)
    tap.observe("c2s", b'{"id":"1","method":"config/read","params":{}}', 1.0)
    (fact,) = tap.observe("s2c", THREAD_RESULT % b"1", 2.0)
    assert isinstance(fact, ThreadResponded) and fact.method == "thread/start"
    assert tap.observe("s2c", b'{"id":"1","result":{}}', 2.0) == ()
    assert tap.pending_requests == 0 and tap.stats.orphan_answers == 0


def test_client_and_server_requests_have_separate_id_spaces() -> None:
    tap = Tap(0, "stdio")
    tap.observe("c2s", b'{"id":0,"method":"thread/start","params":{}}', 1.0)
    # The server asks the client something with the same numeric id...
    tap.observe("s2c", b'{"id":0,"method":"item/tool/call","params":{}}', 1.1)
    # ...the client's answer closes the server's request, not its own.
    assert tap.observe("c2s", b'{"id":0,"result":{}}', 1.2) == ()
    (fact,) = tap.observe("s2c", THREAD_RESULT % b"0", 1.3)
    assert isinstance(fact, ThreadResponded)
    assert tap.pending_requests == 0


def test_out_of_order_answers_pair_by_id() -> None:
    tap = Tap(0, "stdio")
    tap.observe("c2s", b'{"id":1,"method":"thread/start","params":{}}', 1.0)
    tap.observe("c2s", b'{"id":2,"method":"thread/fork","params":{"threadId":"t-0"}}', 1.0)
    (fork,) = tap.observe("s2c", THREAD_RESULT % b"2", 2.0)
    (start,) = tap.observe("s2c", THREAD_RESULT % b"1", 2.0)
    assert isinstance(fork, ThreadResponded) and fork.method == "thread/fork"
    assert isinstance(start, ThreadResponded) and start.method == "thread/start"


def test_errors_become_request_failed_and_orphans_are_counted() -> None:
    tap = Tap(0, "stdio")
    tap.observe("c2s", b'{"id":10,"method":"thread/resume","params":{"threadId":"x"}}', 1.0)
    (fact,) = tap.observe("s2c", b'{"error":{"code":-32600,"message":"no rollout"},"id":10}', 2.0)
    assert isinstance(fact, RequestFailed) and fact.error.code == -32600
    assert tap.observe("s2c", b'{"id":99,"result":{}}', 3.0) == ()
    assert tap.stats.orphan_answers == 1


def test_duplicate_ids_overwrite_and_are_counted() -> None:
    tap = Tap(0, "stdio")
    tap.observe("c2s", b'{"id":1,"method":"config/read","params":{}}', 1.0)
    tap.observe("c2s", b'{"id":1,"method":"thread/start","params":{}}', 1.0)
    assert tap.stats.duplicate_request_ids == 1
    (fact,) = tap.observe("s2c", THREAD_RESULT % b"1", 2.0)
    assert isinstance(fact, ThreadResponded)


def test_pending_map_is_bounded_and_counts_evictions() -> None:
    tap = Tap(0, "stdio", max_pending=100)
    for request_id in range(1000):
        tap.observe("c2s", b'{"id":%d,"method":"thread/start","params":{}}' % request_id, 1.0)
    assert tap.pending_requests == 100
    assert tap.stats.pending_evicted == 900
    # The newest survive; the evicted one's late answer is an orphan, not a crash.
    assert len(tap.observe("s2c", THREAD_RESULT % b"999", 2.0)) == 1
    assert tap.observe("s2c", THREAD_RESULT % b"0", 2.0) == ()


def test_server_notifications_only_from_the_server() -> None:
    tap = Tap(0, "stdio")
    completed = (b'{"method":"turn/completed","params":{"threadId":"t","turn":{"id":"u",'
                 b'"status":"completed"}}}')
    assert tap.observe("c2s", completed, 1.0) == ()
    (fact,) = tap.observe("s2c", completed, 1.0)
    assert isinstance(fact, TurnCompleted)


def test_garbage_is_counted_not_raised() -> None:
    tap = Tap(0, "stdio")
    for line in (b"this is not json", b"\x1b[?2004h", b"[1]", b'{"id":1.5,"method":"x"}', b""):
        assert tap.observe("s2c", line, 1.0) == ()
    assert tap.stats.not_json == 3 and tap.stats.not_envelope == 2


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["id", "method", "params", "result", "error", "turn",
                                       "thread", "clientInfo", "x"]) | st.text(max_size=5),
                      children, max_size=5),
    max_leaves=20,
)
methods = st.sampled_from(["initialize", "thread/start", "thread/resume", "thread/fork",
                           "turn/start", "turn/steer", "turn/interrupt", "turn/completed",
                           "turn/started", "thread/started", "item/completed",
                           "thread/tokenUsage/updated", "thread/archived", "other"])


@given(st.lists(st.tuples(st.sampled_from(["c2s", "s2c"]), st.binary(max_size=200)),
                max_size=50))
def test_arbitrary_bytes_never_raise(lines: list[tuple[str, bytes]]) -> None:
    tap = Tap(0, "stdio", max_pending=8)
    for direction, line in lines:
        tap.observe(direction, line, 0.0)  # type: ignore[arg-type]
    assert tap.pending_requests <= 8


@given(st.lists(st.tuples(st.sampled_from(["c2s", "s2c"]), st.one_of(st.integers(), st.text()),
                          methods, json_values, st.sampled_from(["req", "res", "err", "note"])),
                max_size=60))
def test_arbitrary_json_messages_never_raise(
    messages: list[tuple[str, int | str, str, object, str]],
) -> None:
    tap = Tap(0, "stdio", max_pending=8)
    for direction, request_id, method, value, shape in messages:
        if shape == "req":
            document: object = {"id": request_id, "method": method, "params": value}
        elif shape == "res":
            document = {"id": request_id, "result": value}
        elif shape == "err":
            document = {"id": request_id, "error": value}
        else:
            document = {"method": method, "params": value}
        tap.observe(direction, json.dumps(document).encode(), 0.0)  # type: ignore[arg-type]
    assert tap.pending_requests <= 8


@functools.cache
def all_real_lines() -> tuple[tuple[str, bytes], ...]:
    return tuple(line for name in ALL_TRANSCRIPTS for line in wire_lines(name))


# No deadline: an example taps a few thousand recorded lines, which a loaded machine can
# stretch past hypothesis's 200 ms.
@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_shuffled_real_messages_never_raise(seed: int) -> None:
    # A seed rather than st.randoms(): shuffling thousands of recorded lines draws more data
    # from a hypothesis Random than its health check allows.
    lines = list(all_real_lines())
    random.Random(seed).shuffle(lines)
    tap = Tap(0, "stdio", max_pending=16)
    for direction, line in lines:
        tap.observe(direction, line, 0.0)  # type: ignore[arg-type]
    assert tap.pending_requests <= 16


def test_memory_stays_flat_over_a_long_unanswered_stream() -> None:
    tap = Tap(0, "stdio", max_pending=1000)
    request = b'{"id":%d,"method":"turn/start","params":{"threadId":"t","input":[]}}'

    def run(start: int) -> None:
        for request_id in range(start, start + 20_000):
            tap.observe("c2s", request % request_id, 0.0)

    tracemalloc.start()
    run(0)
    filled = tracemalloc.get_traced_memory()[0]
    run(20_000)
    run(40_000)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert tap.pending_requests == 1000
    assert after - filled < 50_000  # 40,000 more requests replace entries, never add
