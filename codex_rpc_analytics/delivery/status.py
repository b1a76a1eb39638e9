"""What ``flush``, ``close`` and ``status`` report: plain msgspec structs, JSON-encodable as is."""

from __future__ import annotations

import msgspec

from .outbox import SinkCounts


class FlushResult(msgspec.Struct):
    """Outbox totals per sink key after a flush (or close).

    ``complete`` is true when nothing submitted is still waiting: every event committed and no
    event pending for any enabled sink of this process.
    """

    complete: bool
    # Submitted events not in SQLite (the disk refused them): in memory, or lost at close.
    uncommitted: int
    sinks: dict[str, SinkCounts]


class SinkStatus(msgspec.Struct):
    key: str
    kind: str
    enabled: bool
    disabled_reason: str | None = None
    # Events this process delivered to / had rejected by the sink.
    delivered: int = 0
    rejected: int = 0
    # Events waiting for the sink in the outbox: the count found at start (earlier runs
    # included) plus what this process committed since, minus what it settled.
    pending: int = 0
    # Pending events this process dropped because the sink had more than max_pending_events.
    dropped: int = 0
    failed_attempts: int = 0
    last_error: str | None = None
    last_delivered_at: float | None = None


class DeliveryStatus(msgspec.Struct):
    state_dir: str
    running: bool
    # submit() calls' events; committed to SQLite; still in memory; lost (memory bound, closed).
    submitted: int = 0
    committed: int = 0
    queued: int = 0
    dropped: int = 0
    commit_errors: int = 0
    last_commit_error: str | None = None
    sinks: list[SinkStatus] = msgspec.field(default_factory=list)
