"""Faults a black-box test found in delivery (issue 10): 401 and 413 answers, leases of a
process that died, an outbox that grows forever, a damaged or deleted outbox, and a close that
waited the whole deadline for a sink that could not answer."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from codex_rpc_analytics.delivery import (
    Delivery,
    HttpSinkSpec,
    Outbox,
    RetryPolicy,
    SinkSpec,
    flush_command,
    parse_sink_spec,
    requeue_command,
)
from codex_rpc_analytics.delivery.lease_owner import LeaseOwner
from codex_rpc_analytics.store import stats_command
from tests.delivery.support import (
    Collector,
    free_port,
    make_event,
    outbox_rows,
    wait_until,
)
from tests.support import returns_within

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")
TOKEN_A = "cra_ingest_token_number_one_0123456789"
TOKEN_B = "cra_ingest_token_number_two_9876543210"


def _delivery(state_dir: Path, spec: SinkSpec, codex_home: Path, policy: RetryPolicy,
              **kw: Any) -> Delivery:
    kw.setdefault("batch_linger_s", 0.05)
    return Delivery(state_dir=state_dir, sinks=[spec], codex_home=codex_home,
                    retry_policy=policy, logger=logging.getLogger("test.delivery"), **kw)


# -- 401: pending, a long wait, and at once when the credentials change -----------------------


async def test_401_keeps_events_pending_and_a_new_token_is_tried_at_once(
    aiohttp_server: Any, codex_home: Path, state_dir: Path, fast_policy: RetryPolicy,
    tmp_path: Path,
) -> None:
    seen: list[str | None] = []

    async def only_token_b(request: web.Request) -> web.Response:
        await request.read()
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != f"Bearer {TOKEN_B}":
            return web.json_response({"error": "bad token"}, status=401)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", only_token_b)
    server = await aiohttp_server(app)
    token_file = tmp_path / "collector.token"
    token_file.write_text(TOKEN_A)
    token_file.chmod(0o600)
    spec = HttpSinkSpec(f"http://127.0.0.1:{server.port}/", token_file=str(token_file))
    assert fast_policy.auth_retry_s >= 60  # only a credentials change can explain a quick retry
    delivery = _delivery(state_dir, spec, codex_home, fast_policy)
    delivery.start()
    delivery.submit([make_event(i) for i in range(4)])
    await wait_until(lambda: delivery.status().sinks[0].failed_attempts == 1)
    # Refused, yet nothing is parked: the events are not at fault.
    assert outbox_rows(state_dir, "SELECT DISTINCT state FROM deliveries") == [("pending",)]
    assert delivery.status().sinks[0].rejected == 0
    token_file.write_text(TOKEN_B + "\n")
    # Delivered well before the 60 s pause after a 401 could end: the change of the token
    # file, not the clock, cut it short.
    await wait_until(lambda: delivery.status().sinks[0].delivered == 4, timeout=30)
    await delivery.close_async(2)
    assert seen == [f"Bearer {TOKEN_A}", f"Bearer {TOKEN_B}"]


# -- 413: split down to single events; only an event refused by itself is parked -------------


async def test_413_splits_the_batch_down_to_single_events_and_parks_only_the_oversized_one(
    aiohttp_server: Any, codex_home: Path, state_dir: Path, fast_policy: RetryPolicy,
) -> None:
    small = [make_event(i, pad=400) for i in range(9)]
    huge = make_event(99, pad=5000)
    events = [*small[:4], huge, *small[4:]]
    limit = len(b'{"events":[]}') + 2 * (len(small[0][1]) + 1)  # two small events fit
    bodies: list[int] = []
    stored: list[bytes] = []

    async def limited(request: web.Request) -> web.Response:
        body = await request.read()
        bodies.append(len(body))
        if len(body) > limit:
            return web.json_response({"error": "body over the limit"}, status=413)
        import json
        stored.extend(json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode()
                      for e in json.loads(body)["events"])
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/{tail:.*}", limited)
    server = await aiohttp_server(app)
    spec = HttpSinkSpec(f"http://127.0.0.1:{server.port}/")
    delivery = _delivery(state_dir, spec, codex_home, fast_policy, batch_linger_s=60)
    delivery.start()
    delivery.submit(events)
    result = await delivery.flush_async(10)
    await delivery.close_async(2)
    assert result.sinks[spec.key].delivered == 9 and result.sinks[spec.key].rejected == 1
    assert sorted(stored) == sorted(p for _, p in small)  # each small event exactly once
    rejected = outbox_rows(state_dir, "SELECT e.payload, d.last_error FROM deliveries d JOIN"
                                      " events e USING (seq) WHERE d.state = 'rejected'")
    assert [bytes(r[0]) for r in rejected] == [huge[1]] and "413" in rejected[0][1]
    assert 413 not in [b for b in bodies[-3:] if b <= limit]


async def test_requeue_puts_rejected_events_back_and_a_flush_delivers_them(
    aiohttp_server: Any, collector: Collector, codex_home: Path, state_dir: Path,
    fast_policy: RetryPolicy,
) -> None:
    collector.script = [(400, {})]
    server = await aiohttp_server(collector.app())
    spec = HttpSinkSpec(f"http://127.0.0.1:{server.port}/")
    delivery = _delivery(state_dir, spec, codex_home, fast_policy)
    delivery.start()
    delivery.submit([make_event(i) for i in range(3)])
    assert (await delivery.flush_async(5)).sinks[spec.key].rejected == 3
    await delivery.close_async(2)
    out = io.StringIO()
    assert requeue_command(state_dir, [], out=out) == 0
    assert f"{spec.key}: 3 events re-queued" in out.getvalue()
    out = io.StringIO()
    # The collector runs on this test's loop: flush in a thread, as a separate process would.
    assert await asyncio.to_thread(flush_command, state_dir, [], codex_home, 5.0, out=out) == 0
    assert f"{spec.key}: delivered 3, pending 0, rejected 0" in out.getvalue()
    assert len(collector.accepted_ids()) == 3
    assert requeue_command(state_dir, [], out=(again := io.StringIO())) == 0
    assert again.getvalue() == "nothing rejected\n"


# -- leases: a dead owner's are taken over at once, a living owner is waited for --------------


def _leased(state_dir: Path, spec: SinkSpec, owner: str, n: int) -> None:
    outbox = Outbox.open(state_dir)
    outbox.commit([(*make_event(i), time.time()) for i in range(n)], [spec.key])
    batch = outbox.claim_batch(spec.key, owner, max_events=100, max_body_bytes=1 << 20,
                               lease_s=3600, group_by_originator=True)
    assert batch is not None and len(batch.seqs) == n
    outbox.close()


async def test_a_dead_processes_leases_are_taken_over_at_once(
    aiohttp_server: Any, collector: Collector, codex_home: Path, state_dir: Path,
) -> None:
    server = await aiohttp_server(collector.app())
    spec = HttpSinkSpec(f"http://127.0.0.1:{server.port}/")
    dead = LeaseOwner(state_dir)
    dead.acquire()
    _leased(state_dir, spec, dead.id, 7)
    dead.release()  # what the kernel does to the lock of a process killed with -9
    (state_dir / "owners" / f"{dead.id}.lock").touch()  # the file a killed one leaves behind
    out = io.StringIO()
    # The dead process's lease has an hour to run and flush gives up after 30 s: exit 0 means
    # the rows were taken over, not waited for.
    code = await asyncio.to_thread(flush_command, state_dir, [], codex_home, 30.0, out=out)
    assert code == 0, out.getvalue()
    assert len(collector.accepted_ids()) == 7 and len(set(collector.accepted_ids())) == 7
    assert not (state_dir / "owners" / f"{dead.id}.lock").exists()


async def test_flush_waits_for_a_living_process_and_says_so_then_sends_nothing_twice(
    aiohttp_server: Any, collector: Collector, codex_home: Path, state_dir: Path,
) -> None:
    server = await aiohttp_server(collector.app())
    spec = HttpSinkSpec(f"http://127.0.0.1:{server.port}/")
    alive = LeaseOwner(state_dir)
    alive.acquire()
    _leased(state_dir, spec, alive.id, 5)
    err = io.StringIO()
    flushing = asyncio.create_task(asyncio.to_thread(
        flush_command, state_dir, [], codex_home, 20.0, out=io.StringIO(), err=err))
    await wait_until(lambda: "waiting up to" in err.getvalue(), timeout=10)
    assert f"pid {os.getpid()}" in err.getvalue() and "5 events" in err.getvalue()
    assert collector.requests == []  # a living owner's rows are never sent by someone else
    # The other process settles its rows (delivered), then goes away.
    outbox = Outbox.open(state_dir)
    outbox.mark_delivered(spec.key, [1, 2, 3, 4, 5])
    outbox.close()
    alive.release()
    assert await asyncio.wait_for(flushing, 10) == 0
    assert collector.requests == []


# -- the outbox: retention, a pending cap, damage, deletion, permissions ----------------------


def test_settled_events_older_than_the_retention_are_pruned_the_rest_kept(
    state_dir: Path, codex_home: Path, tmp_path: Path,
) -> None:
    spec = parse_sink_spec(f"jsonl:{tmp_path / 'out.jsonl'}")
    old = time.time() - 40 * 86400
    outbox = Outbox.open(state_dir)
    outbox.commit([(*make_event(i), old) for i in range(6)], [spec.key])
    outbox.commit([(*make_event(9), old)], [])  # recorded with no sink at all
    outbox.commit([(*make_event(10), time.time())], [spec.key])
    outbox.mark_delivered(spec.key, [1, 2, 3, 8])
    outbox.mark_rejected(spec.key, [4], "HTTP 400")
    outbox.close()
    delivery = Delivery(state_dir=state_dir, sinks=[spec], codex_home=codex_home,
                        retention_days=30)
    delivery.start()
    assert delivery.flush(5).complete
    delivery.close(2)
    remaining = outbox_rows(state_dir, "SELECT seq FROM events ORDER BY seq")
    # Gone: 1-3 (old and delivered) and 7 (old, no sink wanted it). Kept: 4 (rejected: parked
    # until requeued), 5-6 (still pending when the delivery started), 8 (new).
    assert [r[0] for r in remaining] == [4, 5, 6, 8]


async def test_pending_events_over_the_cap_drop_the_oldest_and_are_counted(
    codex_home: Path, state_dir: Path, fast_policy: RetryPolicy,
) -> None:
    spec = HttpSinkSpec(f"http://127.0.0.1:{free_port()}/")  # nothing listens
    delivery = _delivery(state_dir, spec, codex_home, fast_policy, max_pending_events=5)
    delivery.start()
    delivery.submit([make_event(i) for i in range(8)])
    await wait_until(lambda: delivery.status().committed == 8)
    result = await delivery.close_async(0.5)
    assert result.sinks[spec.key].pending == 5 and result.sinks[spec.key].dropped == 3
    assert delivery.status().sinks[0].dropped == 3
    pending = outbox_rows(state_dir, "SELECT seq FROM deliveries WHERE state = 'pending'")
    assert sorted(r[0] for r in pending) == [4, 5, 6, 7, 8]  # the newest kept
    assert outbox_rows(state_dir, "SELECT COUNT(*) FROM events") == [(8,)]  # stats keep them
    out = io.StringIO()
    assert await asyncio.to_thread(stats_command, state_dir, out) == 0
    assert f"{spec.key}: delivered 0, pending 5, rejected 0, dropped 3" in out.getvalue()


@pytest.mark.parametrize("damage", ["not a database", "damaged pages"])
def test_a_damaged_outbox_is_moved_aside_and_a_fresh_one_started(
    state_dir: Path, codex_home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    state_dir.mkdir(mode=0o700)
    path = state_dir / "outbox.sqlite3"
    if damage == "not a database":
        path.write_bytes(b"this is not a database, " * 200)
    else:
        outbox = Outbox.open(state_dir)
        outbox.commit([(*make_event(i, pad=3000), time.time()) for i in range(40)], [])
        outbox.close()
        raw = bytearray(path.read_bytes())
        raw[4096:12288] = b"\xa5" * 8192  # scribble over the tables' pages
        path.write_bytes(bytes(raw))
    out = tmp_path / "out.jsonl"
    delivery = Delivery(state_dir=state_dir, sinks=[parse_sink_spec(f"jsonl:{out}")],
                        codex_home=codex_home, logger=logging.getLogger("test.delivery"))
    delivery.start()
    delivery.submit([make_event(1), make_event(2)])
    assert delivery.flush(5).complete
    delivery.close(2)
    assert out.read_bytes() == make_event(1)[1] + b"\n" + make_event(2)[1] + b"\n"
    aside = list(state_dir.glob("outbox.sqlite3.corrupt-*"))
    assert len([p for p in aside if not p.name.endswith(("-wal", "-shm"))]) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "moved aside" in warnings[0]


async def test_a_deleted_outbox_is_recreated_and_later_events_land_in_it(
    codex_home: Path, state_dir: Path, tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    delivery = Delivery(state_dir=state_dir, sinks=[parse_sink_spec(f"jsonl:{out}")],
                        codex_home=codex_home, batch_linger_s=0.01)
    delivery.start()
    delivery.submit([make_event(1)])
    assert (await delivery.flush_async(5)).complete
    for name in os.listdir(state_dir):  # a user cleaning up: rm -r the state directory
        if os.path.isfile(state_dir / name):
            os.unlink(state_dir / name)
    delivery.submit([make_event(2)])
    assert (await delivery.flush_async(5)).complete
    await delivery.close_async(2)
    assert outbox_rows(state_dir, "SELECT payload FROM events") == [(make_event(2)[1],)]
    assert out.read_bytes().splitlines() == [make_event(1)[1], make_event(2)[1]]


def test_a_loose_state_dir_and_outbox_are_tightened(state_dir: Path, codex_home: Path) -> None:
    state_dir.mkdir(mode=0o755)
    os.chmod(state_dir, 0o755)
    Outbox.open(state_dir).close()
    os.chmod(state_dir / "outbox.sqlite3", 0o644)
    delivery = Delivery(state_dir=state_dir, sinks=[], codex_home=codex_home)
    delivery.start()
    delivery.submit([make_event(1)])
    assert delivery.flush(5).complete
    delivery.close(2)
    assert stat.S_IMODE(os.stat(state_dir).st_mode) == 0o700
    for name in ("outbox.sqlite3", "outbox.sqlite3-wal", "outbox.sqlite3-shm"):
        if (state_dir / name).exists():
            assert stat.S_IMODE(os.stat(state_dir / name).st_mode) == 0o600, name


# -- close: nothing can be sent or committed, so nothing to wait for --------------------------


@pytest.mark.parametrize("fault", ["sink unreachable", "outbox broken"])
def test_close_returns_at_once_when_nothing_more_can_be_sent_or_committed(
    codex_home: Path, tmp_path: Path, fault: str,
) -> None:
    state_dir = tmp_path / "state"
    if fault == "outbox broken":
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        state_dir = blocker / "state"  # can never be created
    spec = HttpSinkSpec(f"http://127.0.0.1:{free_port()}/")
    delivery = Delivery(state_dir=state_dir, sinks=[spec], codex_home=codex_home,
                        batch_linger_s=0.01)
    delivery.start()
    delivery.submit([make_event(i) for i in range(3)])
    # A close that waited out its deadline (an hour) would not return: the 60 s join only
    # turns that hang into a failure.
    result = returns_within(lambda: delivery.close(3600.0))
    assert not result.complete
    if fault == "sink unreachable":
        assert result.sinks[spec.key].pending == 3  # kept for the next run
        leased = outbox_rows(state_dir, "SELECT COUNT(*) FROM deliveries WHERE lease_owner"
                                        " IS NOT NULL")
        assert leased == [(0,)]
    else:
        assert result.uncommitted == 3


async def test_close_still_retries_a_sink_that_answers_within_its_deadline(
    aiohttp_server: Any, collector: Collector, codex_home: Path, state_dir: Path,
    fast_policy: RetryPolicy,
) -> None:
    # A collector that is up but whose store is restarting answers 503 for a moment.
    collector.script = [(503, {})] * 3
    server = await aiohttp_server(collector.app())
    spec = HttpSinkSpec(f"http://127.0.0.1:{server.port}/")
    delivery = _delivery(state_dir, spec, codex_home, fast_policy, batch_linger_s=60)
    delivery.start()
    delivery.submit([make_event(i) for i in range(3)])
    await wait_until(lambda: delivery.status().committed == 3)
    result = await delivery.close_async(10)
    assert result.complete
    assert [r.status for r in collector.requests] == [503, 503, 503, 200]
