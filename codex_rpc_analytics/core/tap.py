"""The per-connection tap: classified lines in, facts out.

A ``Tap`` knows one connection (its id and transport) and pairs each answer with its request
by (direction, id): client and server requests live in separate id spaces, ids are ints or
strings, and ``1`` is not ``"1"`` (docs/app-server-protocol.md §6). It decodes typed views
only for the handful of methods analytics reads; everything else costs one envelope decode.

The tap is pure: it is handed each line and the time it was seen, and returns facts. Its
pending-request map is bounded and counts what it evicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

import msgspec

from .bounded import BoundedMap
from .envelope import Envelope, RequestId, decode_envelope
from .facts import (
    ApprovalAnswered,
    CompactionStarted,
    ConnectionClosed,
    Fact,
    Initialized,
    InterruptAnswered,
    ItemCompleted,
    QueueChanged,
    RequestFailed,
    SteerAnswered,
    ThreadArchiveChanged,
    ThreadMethod,
    ThreadResponded,
    ThreadStarted,
    TokenUsageUpdated,
    Transport,
    TurnCompleted,
    TurnDiffUpdated,
    TurnStartAnswered,
    TurnStarted,
    TurnTaskRequested,
)
from .item_views import TOOL_ITEM_TYPES, ToolItemNotification, TurnDiffNotification
from .views import (
    ApprovalAnswer,
    ApprovalRequestParams,
    ErrorObject,
    InitializeParams,
    InitializeResult,
    InterruptParams,
    ItemNotification,
    QueueParams,
    QueueResult,
    SteerParams,
    SteerResult,
    ThreadArchiveNotification,
    ThreadNotification,
    ThreadRequestParams,
    ThreadResult,
    ThreadTaskParams,
    TokenUsageNotification,
    TurnNotification,
    TurnStartParams,
    TurnStartResult,
    decode_view,
)

Direction = Literal["c2s", "s2c"]
C2S: Final = "c2s"
S2C: Final = "s2c"

NO_FACTS: Sequence[Fact] = ()

# Client requests whose params the tap keeps until the answer arrives, and the view to keep.
_TRACKED_PARAMS: dict[str, type[Any]] = {
    "initialize": InitializeParams,
    "thread/start": ThreadRequestParams,
    "thread/resume": ThreadRequestParams,
    "thread/fork": ThreadRequestParams,
    "turn/start": TurnStartParams,
    "turn/steer": SteerParams,
    "turn/interrupt": InterruptParams,
    "review/start": ThreadTaskParams,
    "thread/compact/start": ThreadTaskParams,
    "thread/queue/add": QueueParams,
    "thread/queue/delete": QueueParams,
    "thread/queue/start": QueueParams,
}
# Server requests whose params the tap keeps until the client answers: approvals.
_TRACKED_SERVER_PARAMS: dict[str, type[Any]] = {
    "item/commandExecution/requestApproval": ApprovalRequestParams,
    "item/fileChange/requestApproval": ApprovalRequestParams,
}
_THREAD_METHODS: frozenset[str] = frozenset(("thread/start", "thread/resume", "thread/fork"))
_QUEUE_ACTIONS: dict[str, Literal["add", "remove", "start"]] = {
    "thread/queue/add": "add",
    "thread/queue/delete": "remove",
    "thread/queue/start": "start",
}
# Requests whose turn codex runs as a task of its own (no turn event).
_TASK_METHODS: dict[str, Literal["review", "compact"]] = {
    "review/start": "review",
    "thread/compact/start": "compact",
}


class TapStats(msgspec.Struct):
    """What the tap saw and what it could not use. Every counter only grows."""

    lines: int = 0
    requests: int = 0
    notifications: int = 0
    responses: int = 0
    errors: int = 0
    not_json: int = 0
    not_envelope: int = 0
    orphan_answers: int = 0
    duplicate_request_ids: int = 0
    pending_evicted: int = 0
    undecodable_views: int = 0


class _Pending(msgspec.Struct):
    method: str
    params: Any  # the tracked view, or None
    requested_at: float


class Tap:
    """Observes one connection. Call :meth:`observe` for every line in each direction."""

    DEFAULT_MAX_PENDING = 4096

    def __init__(
        self,
        connection_id: int,
        transport: Transport,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.connection_id = connection_id
        self.transport: Transport = transport
        self.stats = TapStats()
        self._pending: BoundedMap[tuple[str, RequestId], _Pending] = BoundedMap(max_pending)
        self._notification_handlers: dict[
            str, Callable[[Envelope, float], Sequence[Fact]]
        ] = {
            "thread/started": self._on_thread_started,
            "turn/started": self._on_turn_started,
            "turn/completed": self._on_turn_completed,
            "thread/tokenUsage/updated": self._on_token_usage,
            "item/completed": self._on_item_completed,
            "item/started": self._on_item_started,
            "turn/diff/updated": self._on_turn_diff,
            "thread/archived": self._on_archive_changed,
            "thread/unarchived": self._on_archive_changed,
        }

    # -- input ---------------------------------------------------------------------------------

    def observe(self, direction: Direction, line: bytes | str, now: float) -> Sequence[Fact]:
        """Classify one line seen travelling in ``direction`` at time ``now``; never raises.
        A line held as text (replay's) is read as its UTF-8 bytes, without encoding it.

        This is every analysed line's path, so it classifies inline, by ``classify``'s rules
        (envelope.py: request, then notification, then response, then error), rather than
        through its ``Message`` objects."""
        stats = self.stats
        stats.lines += 1
        try:
            envelope = decode_envelope(line)
        except msgspec.ValidationError:
            stats.not_envelope += 1  # valid JSON of the wrong shape
            return NO_FACTS
        except (ValueError, RecursionError):
            stats.not_json += 1
            return NO_FACTS
        method = envelope.method
        if method is not None:
            if envelope.id is None:  # a null id is not a request id: a notification
                stats.notifications += 1
                if direction == S2C:
                    handler = self._notification_handlers.get(method)
                    if handler is not None:
                        return handler(envelope, now)
                return NO_FACTS
            stats.requests += 1
            self._remember_request(direction, envelope, now)
            return NO_FACTS
        if envelope.id is not None:
            if envelope.result is not msgspec.UNSET:
                stats.responses += 1
                return self._on_answer(direction, envelope, now)
            if envelope.error is not msgspec.UNSET:
                stats.errors += 1
                return self._on_answer(direction, envelope, now)
        stats.not_envelope += 1
        return NO_FACTS

    def notification(
        self, direction: Direction, method: str, params: msgspec.Raw | msgspec.UnsetType,
        now: float,
    ) -> Sequence[Fact]:
        """:meth:`observe` for a line already decoded as a notification by the envelope's
        rules (no ``id``, a string ``method``; prefilter.NotificationProbe): what observe does
        with it, without decoding it again. The handlers read only ``method`` and ``params``."""
        stats = self.stats
        stats.lines += 1
        stats.notifications += 1
        if direction == S2C:
            handler = self._notification_handlers.get(method)
            if handler is not None:
                return handler(Envelope(method=method, params=params), now)
        return NO_FACTS

    def close(self, now: float) -> Sequence[Fact]:
        """The connection ended: unanswered requests are dropped, the reducer is told."""
        self._pending.drain()
        return (ConnectionClosed(self.connection_id, now),)

    @property
    def notification_methods(self) -> frozenset[str]:
        """The server notifications this tap reads: the keys of its handler table, the one
        list of them (the analyzer's pre-filter skips every other notification by its bytes,
        prefilter.py). Any other notification only counts in ``lines`` and ``notifications``."""
        return frozenset(self._notification_handlers)

    @property
    def pending_requests(self) -> int:
        return len(self._pending)

    # -- requests and answers ------------------------------------------------------------------

    def _remember_request(self, direction: Direction, envelope: Envelope, now: float) -> None:
        method = envelope.method
        assert method is not None and envelope.id is not None
        params: Any = None
        view = (_TRACKED_PARAMS if direction == C2S else _TRACKED_SERVER_PARAMS).get(method)
        if view is not None:
            params = decode_view(envelope.params, view)
            if params is None:
                self.stats.undecodable_views += 1
        key = (direction, envelope.id)
        if key in self._pending:
            self.stats.duplicate_request_ids += 1
        if self._pending.put(key, _Pending(method, params, now)) is not None:
            self.stats.pending_evicted += 1

    def _on_answer(self, direction: Direction, envelope: Envelope, now: float) -> Sequence[Fact]:
        assert envelope.id is not None
        request_direction = S2C if direction == C2S else C2S
        pending = self._pending.pop((request_direction, envelope.id))
        if pending is None:
            self.stats.orphan_answers += 1
            return NO_FACTS
        if pending.params is None:
            return NO_FACTS
        method = pending.method
        if request_direction == S2C:
            return self._on_client_answer(pending, envelope, now)
        if envelope.error is not msgspec.UNSET:
            return self._on_error(method, pending, envelope.error, now)
        return self._on_result(method, pending, envelope.result, now)

    def _on_error(
        self, method: str, pending: _Pending, raw: msgspec.Raw, now: float
    ) -> Sequence[Fact]:
        error = decode_view(raw, ErrorObject) or ErrorObject()
        if method == "turn/steer":
            return (SteerAnswered(self.connection_id, now, pending.params, None, error,
                                  pending.requested_at),)
        return (RequestFailed(self.connection_id, now, method, error),)

    def _on_result(
        self, method: str, pending: _Pending, raw: msgspec.Raw | msgspec.UnsetType, now: float
    ) -> Sequence[Fact]:
        connection_id = self.connection_id
        if method in _THREAD_METHODS:
            result = decode_view(raw, ThreadResult)
            if result is None:
                return self._undecodable()
            thread_method: ThreadMethod = method  # type: ignore[assignment]
            return (ThreadResponded(connection_id, now, thread_method, result, pending.params),)
        if method == "initialize":
            init = decode_view(raw, InitializeResult)
            if init is None:
                return self._undecodable()
            return (Initialized(connection_id, now, self.transport, pending.params, init),)
        if method == "turn/start":
            turn_result = decode_view(raw, TurnStartResult)
            turn = turn_result.turn if turn_result is not None else None
            return (TurnStartAnswered(connection_id, now, pending.params, turn,
                                      pending.requested_at),)
        if method == "turn/steer":
            steer = decode_view(raw, SteerResult)
            accepted = steer.turn_id if steer is not None else None
            return (SteerAnswered(connection_id, now, pending.params, accepted, None,
                                  pending.requested_at),)
        if method == "turn/interrupt":
            return (InterruptAnswered(connection_id, now, pending.params, pending.requested_at),)
        action = _QUEUE_ACTIONS.get(method)
        if action is not None:
            answer = decode_view(raw, QueueResult) or QueueResult()
            params = pending.params
            submission = (answer.queued_submission.id if answer.queued_submission is not None
                          else params.queued_submission_id)
            turn_id = answer.turn.id if answer.turn is not None else None
            return (QueueChanged(connection_id, now, action, params, submission, turn_id),)
        task = _TASK_METHODS.get(method)
        if task is not None:
            answered = decode_view(raw, TurnStartResult)
            turn_id = answered.turn.id if answered is not None and answered.turn else None
            return (TurnTaskRequested(connection_id, now, pending.params.thread_id, task,
                                      turn_id),)
        return NO_FACTS

    def _on_client_answer(
        self, pending: _Pending, envelope: Envelope, now: float
    ) -> Sequence[Fact]:
        """The client answered a server request the tap follows (an approval)."""
        if envelope.error is not msgspec.UNSET or envelope.id is None:
            return NO_FACTS
        answer = decode_view(envelope.result, ApprovalAnswer) or ApprovalAnswer()
        return (ApprovalAnswered(self.connection_id, now, pending.method, envelope.id,
                                 pending.params, answer.decision),)

    def _undecodable(self) -> Sequence[Fact]:
        self.stats.undecodable_views += 1
        return NO_FACTS

    # -- server notifications ------------------------------------------------------------------

    def _on_thread_started(self, envelope: Envelope, now: float) -> Sequence[Fact]:
        notification = decode_view(envelope.params, ThreadNotification)
        if notification is None or notification.thread is None:
            return self._undecodable()
        return (ThreadStarted(self.connection_id, now, notification.thread),)

    def _on_turn_started(self, envelope: Envelope, now: float) -> Sequence[Fact]:
        notification = decode_view(envelope.params, TurnNotification)
        if notification is None or notification.turn is None:
            return self._undecodable()
        return (TurnStarted(self.connection_id, now, notification.thread_id, notification.turn),)

    def _on_turn_completed(self, envelope: Envelope, now: float) -> Sequence[Fact]:
        notification = decode_view(envelope.params, TurnNotification)
        if notification is None or notification.turn is None:
            return self._undecodable()
        return (TurnCompleted(self.connection_id, now, notification.thread_id,
                              notification.turn),)

    def _on_token_usage(self, envelope: Envelope, now: float) -> Sequence[Fact]:
        notification = decode_view(envelope.params, TokenUsageNotification)
        if notification is None:
            return self._undecodable()
        return (TokenUsageUpdated(self.connection_id, now, notification),)

    def _on_item_completed(self, envelope: Envelope, now: float) -> Sequence[Fact]:
        notification = decode_view(envelope.params, ItemNotification)
        if notification is None or notification.item is None:
            return self._undecodable()
        tool = None
        if notification.item.type in TOOL_ITEM_TYPES:
            # Tool items (a minority) are decoded once more, whole: a tool event is built
            # from them.
            whole = decode_view(envelope.params, ToolItemNotification)
            tool = whole.item if whole is not None else None
        return (ItemCompleted(self.connection_id, now, notification, tool),)

    def _on_item_started(self, envelope: Envelope, now: float) -> Sequence[Fact]:
        """Only a compaction's start matters (the context size it started from)."""
        notification = decode_view(envelope.params, ItemNotification)
        if (notification is None or notification.item is None
                or notification.item.type != "contextCompaction"):
            return NO_FACTS
        return (CompactionStarted(self.connection_id, now, notification.thread_id,
                                  notification.turn_id),)

    def _on_turn_diff(self, envelope: Envelope, now: float) -> Sequence[Fact]:
        notification = decode_view(envelope.params, TurnDiffNotification)
        if notification is None or notification.diff is None:
            return self._undecodable()
        return (TurnDiffUpdated(self.connection_id, now, notification.thread_id,
                                notification.turn_id, notification.diff),)

    def _on_archive_changed(self, envelope: Envelope, now: float) -> Sequence[Fact]:
        notification = decode_view(envelope.params, ThreadArchiveNotification)
        if notification is None or notification.thread_id is None:
            return self._undecodable()
        action: Literal["archived", "unarchived"] = (
            "archived" if envelope.method == "thread/archived" else "unarchived"
        )
        return (ThreadArchiveChanged(self.connection_id, now, notification.thread_id, action,
                                     None),)
