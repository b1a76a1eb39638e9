"""Facts: what the tap observed on one connection, as inputs to the reducer.

A fact is plain immutable data (a msgspec tagged union, tag member ``fact``). Each names the
connection it came from and the tap's clock when it was seen; the core never reads a clock
of its own. Facts carry decoded views, never raw lines.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .item_views import ToolItemView
from .views import (
    ApprovalRequestParams,
    ErrorObject,
    InitializeParams,
    InitializeResult,
    InterruptParams,
    ItemNotification,
    QueueParams,
    SteerParams,
    ThreadRequestParams,
    ThreadResult,
    ThreadView,
    TokenUsageNotification,
    TurnStartParams,
    TurnView,
)

Transport = Literal["stdio", "websocket", "in_process"]
TRANSPORTS: tuple[Transport, ...] = ("stdio", "websocket", "in_process")

ThreadMethod = Literal["thread/start", "thread/resume", "thread/fork"]


class Fact(msgspec.Struct, frozen=True, tag_field="fact"):
    connection_id: int
    observed_at: float  # Unix seconds, the tap's clock


class Initialized(Fact, frozen=True, tag="initialized"):
    """A successful ``initialize`` request + result pair."""

    transport: Transport
    params: InitializeParams
    result: InitializeResult


class ThreadResponded(Fact, frozen=True, tag="thread_responded"):
    """A successful ``thread/start``, ``thread/resume`` or ``thread/fork`` result."""

    method: ThreadMethod
    result: ThreadResult
    request: ThreadRequestParams | None


class ThreadStarted(Fact, frozen=True, tag="thread_started"):
    """A ``thread/started`` notification (the only way subagent threads are announced)."""

    thread: ThreadView


class ThreadArchiveChanged(Fact, frozen=True, tag="thread_archive_changed"):
    thread_id: str
    action: Literal["archived", "unarchived"]
    emitted_at_ms: int | None


class RequestFailed(Fact, frozen=True, tag="request_failed"):
    """An error answer to a request analytics follows."""

    method: str
    error: ErrorObject


class TurnStartAnswered(Fact, frozen=True, tag="turn_start_answered"):
    params: TurnStartParams
    turn: TurnView | None
    requested_at: float


class TurnStarted(Fact, frozen=True, tag="turn_started"):
    thread_id: str | None
    turn: TurnView


class TurnCompleted(Fact, frozen=True, tag="turn_completed"):
    thread_id: str | None
    turn: TurnView


class TokenUsageUpdated(Fact, frozen=True, tag="token_usage_updated"):
    notification: TokenUsageNotification


class ItemCompleted(Fact, frozen=True, tag="item_completed"):
    notification: ItemNotification
    tool: ToolItemView | None = None  # the whole item, for tool items only


class TurnDiffUpdated(Fact, frozen=True, tag="turn_diff_updated"):
    thread_id: str | None
    turn_id: str | None
    diff: str


class SteerAnswered(Fact, frozen=True, tag="steer_answered"):
    """A ``turn/steer`` answer; ``error`` is set when it was rejected."""

    params: SteerParams
    accepted_turn_id: str | None
    error: ErrorObject | None
    requested_at: float


class InterruptAnswered(Fact, frozen=True, tag="interrupt_answered"):
    """A successful ``turn/interrupt``: ``requested_at`` is when the request was seen."""

    params: InterruptParams
    requested_at: float


class TurnTaskRequested(Fact, frozen=True, tag="turn_task_requested"):
    """A successful ``review/start`` (``task`` "review") or ``thread/compact/start``
    ("compact"): the thread's next turn is a task codex runs, not a user turn."""

    thread_id: str | None
    task: Literal["review", "compact"]
    turn_id: str | None  # the review's turn, as review/start answers it


class QueueChanged(Fact, frozen=True, tag="queue_changed"):
    """A successful ``thread/queue/add`` (``action`` "add"), ``/delete`` ("remove") or
    ``/start`` ("start", with the turn it started)."""

    action: Literal["add", "remove", "start"]
    params: QueueParams
    submission_id: str | None
    turn_id: str | None


class ApprovalAnswered(Fact, frozen=True, tag="approval_answered"):
    """The client's answer to a server's approval request (``observed_at``: when the tap saw
    the answer)."""

    method: str
    request_id: int | str
    params: ApprovalRequestParams
    decision: Any


class CompactionStarted(Fact, frozen=True, tag="compaction_started"):
    """``item/started`` of a ``contextCompaction`` item."""

    thread_id: str | None
    turn_id: str | None


class ConnectionClosed(Fact, frozen=True, tag="connection_closed"):
    pass


# The facts the tap observes on the wire. Those a host reports through AnalyticsEventsClient
# are app_facts.AnyAppFact (that module subclasses Fact, so it builds on this one).
AnyFact = (
    Initialized
    | ThreadResponded
    | ThreadStarted
    | ThreadArchiveChanged
    | RequestFailed
    | TurnStartAnswered
    | TurnStarted
    | TurnCompleted
    | TokenUsageUpdated
    | ItemCompleted
    | TurnDiffUpdated
    | SteerAnswered
    | InterruptAnswered
    | TurnTaskRequested
    | QueueChanged
    | ApprovalAnswered
    | CompactionStarted
    | ConnectionClosed
)
