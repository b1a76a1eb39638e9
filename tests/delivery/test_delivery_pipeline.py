"""Delivery without a network: outbox only, jsonl sink, memory bounds, disk trouble, SIGKILL."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import msgspec
import pytest

from codex_rpc_analytics.delivery import Delivery, RetryPolicy, parse_sink_spec
from tests.delivery.support import make_event, outbox_rows


def test_no_sinks_commits_to_the_outbox_only(state_dir: Path) -> None:
    delivery = Delivery(state_dir=state_dir, sinks=[])
    delivery.start()
    events = [make_event(i) for i in range(3)]
    delivery.submit(events)
    result = delivery.flush(5)
    assert result.complete and result.sinks == {}
    status = delivery.status()
    assert (status.submitted, status.committed, status.queued, status.dropped) == (3, 3, 0, 0)
    assert msgspec.json.decode(msgspec.json.encode(status))["committed"] == 3
    delivery.close(5)
    assert outbox_rows(state_dir, "SELECT payload FROM events ORDER BY seq") == [
        (p,) for _, p in events
    ]


def test_jsonl_sink_writes_exactly_the_payload_lines(tmp_path: Path) -> None:
    out = tmp_path / "missing-dir" / "events.jsonl"
    policy = RetryPolicy(base_s=0.01, cap_s=0.05)
    delivery = Delivery(
        state_dir=tmp_path / "state",
        sinks=[parse_sink_spec(f"jsonl:{out}")],
        retry_policy=policy,
        batch_linger_s=0.01,
    )
    delivery.start()
    events = [make_event(i, pad=i) for i in range(5)]
    delivery.submit(events)
    # The directory does not exist yet: the sink fails, nothing is lost.
    deadline = time.monotonic() + 30  # bounds a hang only
    while delivery.status().sinks[0].failed_attempts < 2:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    out.parent.mkdir()
    assert delivery.flush(5).complete
    delivery.submit([make_event(99)])
    delivery.close(5)
    expected = b"".join(p + b"\n" for _, p in [*events, make_event(99)])
    assert out.read_bytes() == expected
    assert (out.stat().st_mode & 0o777) == 0o600


def test_an_existing_jsonl_file_readable_by_others_is_made_private(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "events.jsonl"
    out.write_bytes(b"")
    out.chmod(0o644)  # an older version's file, or one made under a loose umask
    delivery = Delivery(state_dir=tmp_path / "state", sinks=[parse_sink_spec(f"jsonl:{out}")],
                        batch_linger_s=0.01, logger=logging.getLogger("test.jsonl"))
    delivery.start()
    for n in range(3):
        delivery.submit([make_event(n)])
        assert delivery.flush(5).complete
    delivery.close(5)
    assert (out.stat().st_mode & 0o777) == 0o600
    assert len(out.read_bytes().splitlines()) == 3
    warnings = [r.getMessage() for r in caplog.records if "readable by others" in r.getMessage()]
    assert len(warnings) == 1 and "0644" in warnings[0] and "made it 0600" in warnings[0]


def test_submit_never_raises_and_bounds_memory(state_dir: Path) -> None:
    delivery = Delivery(state_dir=state_dir, sinks=[], max_queued_events=3)
    delivery.submit([make_event(i) for i in range(5)])  # before start: queued in memory
    delivery.submit(None)  # type: ignore[arg-type]
    delivery.submit([("bad",)])  # type: ignore[list-item]
    status = delivery.status()
    assert (status.submitted, status.queued, status.dropped) == (5, 3, 2)
    assert delivery.uncommitted() == 0  # not started: nothing drains, nothing to wait for
    result = delivery.close(5)
    assert result.complete
    delivery.submit([make_event(9)])  # after close: counted, not raised
    assert (delivery.status().submitted, delivery.status().dropped) == (6, 3)
    assert outbox_rows(state_dir, "SELECT COUNT(*) FROM events") == [(3,)]


def test_submit_from_many_threads(state_dir: Path) -> None:
    delivery = Delivery(state_dir=state_dir, sinks=[])
    delivery.start()

    def produce(base: int) -> None:
        for i in range(200):
            delivery.submit([make_event(base + i)])

    threads = [threading.Thread(target=produce, args=(n * 1000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert delivery.close(5).complete
    assert outbox_rows(state_dir, "SELECT COUNT(DISTINCT payload) FROM events") == [(800,)]


def test_a_proxy_waits_for_uncommitted_events_only_while_a_committer_runs(
        state_dir: Path) -> None:
    """A proxy's analysis pauses between slices while ``uncommitted()`` is high, so that the
    committer gets the GIL: before ``start`` and after ``close`` nothing commits, and a pause
    would slow analysis down for nothing (an in-process host may start its delivery late:
    events submitted before ``start`` are committed then)."""
    delivery = Delivery(state_dir=state_dir, sinks=[])
    delivery.submit([make_event(i) for i in range(3000)])
    assert delivery.status().queued == 3000
    assert delivery.uncommitted() == 0
    delivery.start()
    assert delivery.flush(5).complete and delivery.uncommitted() == 0
    assert delivery.close(5).complete
    delivery.submit([make_event(9)])
    assert delivery.uncommitted() == 0
    assert outbox_rows(state_dir, "SELECT COUNT(*) FROM events") == [(3000,)]


def test_unwritable_state_dir_keeps_events_in_memory_until_it_heals(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state_dir = tmp_path / "state"
    state_dir.write_text("a file where the directory should be")
    delivery = Delivery(state_dir=state_dir, sinks=[])
    delivery.start()
    delivery.submit([make_event(i) for i in range(4)])
    deadline = time.monotonic() + 30  # bounds a hang only
    while delivery.status().commit_errors < 2:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    assert delivery.status().queued == 4
    # Commits fail: nothing to wait for (a proxy's analysis must not slow down for it).
    assert delivery.uncommitted() == 0
    state_dir.unlink()
    deadline = time.monotonic() + 30  # bounds a hang only
    while delivery.status().committed < 4:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert delivery.uncommitted() == 0
    assert delivery.close(5).complete
    # Logged, but rate-limited: one warning however many retries.
    assert len([r for r in caplog.records if "outbox unavailable" in r.getMessage()]) == 1


def test_close_before_start_still_commits(state_dir: Path) -> None:
    delivery = Delivery(state_dir=state_dir, sinks=[])
    delivery.submit([make_event(1)])
    assert delivery.close(5).complete
    assert delivery.close(5).complete  # idempotent
    assert outbox_rows(state_dir, "SELECT COUNT(*) FROM events") == [(1,)]


_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from codex_rpc_analytics.delivery import Delivery, parse_sink_spec

    state_dir, sink, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    delivery = Delivery(state_dir=state_dir, sinks=[parse_sink_spec(sink)], batch_linger_s=60)
    delivery.start()
    started = time.monotonic()
    delivery.submit([("codex_turn_event", b'{"event_type":"codex_turn_event","n":%d}' % i)
                     for i in range(n)])
    # Polling a condition; the bound only turns a commit that waits for the sink (which
    # cannot take anything, and lingers 60 s) into a failure instead of a hang.
    while delivery.status().committed < n:
        if time.monotonic() - started > 30:
            sys.exit("not committed")
        time.sleep(0.001)
    print("committed", flush=True)
    time.sleep(60)  # killed here
    """
)


def test_outbox_survives_sigkill_right_after_commit(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    out = tmp_path / "later" / "events.jsonl"
    with subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(state_dir), f"jsonl:{out}", "50"],
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            # Committed although the sink cannot take anything yet (its directory does not
            # exist): the commit never waits for delivery. How fast: `make bench` (delivery).
            assert line == "committed\n", line
            child.send_signal(signal.SIGKILL)
            assert child.wait(10) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
    expected = [b'{"event_type":"codex_turn_event","n":%d}' % i for i in range(50)]
    assert outbox_rows(state_dir, "SELECT payload FROM events ORDER BY seq") == [
        (p,) for p in expected
    ]
    assert outbox_rows(state_dir, "SELECT state, COUNT(*) FROM deliveries GROUP BY 1") == [
        ("pending", 50)
    ]
    # The next run delivers what the killed one left behind.
    out.parent.mkdir()
    later = Delivery(state_dir=state_dir, sinks=[parse_sink_spec(f"jsonl:{out}")])
    later.start()
    assert later.close(5).complete
    assert out.read_bytes() == b"".join(p + b"\n" for p in expected)
