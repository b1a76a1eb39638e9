"""The SQLite outbox: state dir resolution, byte-exact payloads, leases between processes."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path
from typing import Any

import pytest

from codex_rpc_analytics.delivery import Outbox, OutboxError, resolve_state_dir
from tests.delivery.support import make_event, outbox_rows
from tests.support import another_writer_while_connecting


def test_state_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_RPC_ANALYTICS_STATE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert resolve_state_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_state_dir() == tmp_path / "env"
    monkeypatch.delenv("CODEX_RPC_ANALYTICS_STATE_DIR")
    assert resolve_state_dir() == tmp_path / "xdg" / "codex-rpc-analytics"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_state_dir() == tmp_path / ".local" / "state" / "codex-rpc-analytics"


def test_commit_keeps_payload_bytes_and_extracts_fields(state_dir: Path) -> None:
    outbox = Outbox.open(state_dir)
    thread = make_event(1, client="codex_vscode", mode="resumed")
    turn = make_event(2, event_type="codex_turn_event", status="interrupted")
    outbox.commit([(*thread, 10.0), (*turn, 11.0), ("odd", b"not json", 12.0)], ["s1", "s2"])
    outbox.close()
    rows = outbox_rows(
        state_dir,
        "SELECT event_id, event_type, payload, created_at, client, thread_id, turn_id,"
        " initialization_mode, status FROM events ORDER BY seq",
    )
    assert [r[2] for r in rows] == [thread[1], turn[1], b"not json"]
    assert [r[1] for r in rows] == ["codex_thread_initialized", "codex_turn_event", "odd"]
    assert rows[0][3:] == (10.0, "codex_vscode", "thread-1", None, "resumed", None)
    assert rows[1][4:] == ("probe", "thread-2", "turn-2", None, "interrupted")
    assert rows[2][4:] == (None, None, None, None, None)
    assert all(uuid.UUID(str(r[0])) for r in rows)
    deliveries = outbox_rows(state_dir, "SELECT sink_key, state, attempts FROM deliveries")
    assert sorted(deliveries) == sorted([(k, "pending", 0) for k in ("s1", "s2") for _ in rows])


def test_file_is_private_and_in_wal_mode(state_dir: Path) -> None:
    Outbox.open(state_dir).close()
    path = state_dir / "outbox.sqlite3"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert outbox_rows(state_dir, "PRAGMA journal_mode") == [("wal",)]


def test_a_proxy_opening_a_new_outbox_while_another_writes_it_waits_for_it(
    state_dir: Path,
) -> None:
    """Two sessions starting together on a new state directory (an editor starting two
    app-servers): one holds the outbox's write lock while the other sets up its connection,
    and the other waits for it. SQLite does not wait to switch a file to WAL, so an outbox
    switched after it appeared failed the other with "database is locked"."""
    with another_writer_while_connecting(state_dir / "outbox.sqlite3") as writers:
        outbox = Outbox.open(state_dir)
    try:
        assert len(writers) == 1
        outbox.commit([(*make_event(1), 10.0)], ["s1"])
    finally:
        outbox.close()
    assert len(outbox_rows(state_dir, "SELECT seq FROM events")) == 1


def test_two_owners_never_claim_the_same_rows(state_dir: Path) -> None:
    first, second = Outbox.open(state_dir), Outbox.open(state_dir)
    first.commit([(*make_event(i), 1.0) for i in range(5)], ["sink"])
    limits: dict[str, Any] = {
        "max_events": 3, "max_body_bytes": 10**6, "lease_s": 60.0, "group_by_originator": True
    }
    a = first.claim_batch("sink", "owner-a", **limits)
    b = second.claim_batch("sink", "owner-b", **limits)
    assert a is not None and b is not None
    assert len(a.seqs) == 3 and len(b.seqs) == 2 and not set(a.seqs) & set(b.seqs)
    assert second.claim_batch("sink", "owner-b", **limits) is not None  # its own lease
    assert second.claim_batch("sink", "owner-c", **limits) is None
    # An expired lease (a killed process) is claimable again; a released one at once.
    first.release("owner-a")
    c = second.claim_batch("sink", "owner-c", **limits)
    assert c is not None and c.seqs == a.seqs
    second.mark_delivered("sink", c.seqs)
    assert second.sink_counts(["sink"])["sink"].delivered == 3
    assert second.claim_batch("sink", "owner-d", **limits) is None
    # owner-b renews its lease with one that has already run out, as if it had been killed.
    assert second.claim_batch("sink", "owner-b", **{**limits, "lease_s": -1.0}) is not None
    d = second.claim_batch("sink", "owner-d", **limits)
    assert d is not None and d.seqs == b.seqs
    first.close()
    second.close()


def test_batches_group_by_client_and_respect_bytes(state_dir: Path) -> None:
    outbox = Outbox.open(state_dir)
    events = [make_event(i, client="a" if i % 2 else "b", pad=100) for i in range(6)]
    outbox.commit([(*e, 1.0) for e in events], ["sink"])
    size = len(events[0][1])
    batch = outbox.claim_batch(
        "sink", "me", max_events=10, max_body_bytes=13 + 2 * size + 1,
        lease_s=60, group_by_originator=True,
    )
    assert batch is not None
    assert batch.originator == "b" and batch.payloads == [events[0][1], events[2][1]]
    # A single event larger than the byte limit still leaves, alone.
    big = outbox.claim_batch(
        "sink", "me", max_events=10, max_body_bytes=1, lease_s=60, group_by_originator=False
    )
    assert big is not None and len(big.seqs) == 1
    outbox.close()


def test_readonly_open_errors_are_friendly(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match="does not exist"):
        Outbox.open_readonly(tmp_path / "missing")
    with pytest.raises(OutboxError, match="no outbox"):
        Outbox.open_readonly(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutboxError, match="cannot open outbox"):
        Outbox.open(tmp_path / "file")
