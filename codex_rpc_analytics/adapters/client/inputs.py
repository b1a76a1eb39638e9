"""The fact builders: what a ``track_*`` call queues, turned into core facts on the worker.

A call must cost its caller next to nothing, so it queues the raw inputs (JSON bytes or views)
in a small frozen struct; the worker decodes them with the same views the proxy's tap uses
(which is what makes the events identical) and canonicalises skill paths, the client's only
file-system access (the reference's ``skill_id`` does the same).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import msgspec

from ...core.app_facts import SkillsInvoked
from ...core.facts import (
    TRANSPORTS,
    Fact,
    Initialized,
    ThreadArchiveChanged,
    ThreadMethod,
    ThreadResponded,
)
from ...core.views import (
    InitializeParams,
    InitializeResult,
    ThreadArchiveNotification,
    ThreadRequestParams,
    ThreadResult,
)
from ...core.views import decode_view as _decode_view

JsonInput = bytes | bytearray | memoryview | str
"""Raw JSON of a message member (``params`` or ``result``), exactly as sent on the wire."""

THREAD_METHODS: frozenset[str] = frozenset(("thread/start", "thread/resume", "thread/fork"))
ARCHIVE_METHODS: dict[str, str] = {
    "thread/archived": "archived",
    "thread/unarchived": "unarchived",
}


def decode(raw: Any, view: type[Any]) -> Any:
    """A view from raw JSON (decoded on the worker) or the view itself; None if unusable."""
    if isinstance(raw, view):
        return raw
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    elif isinstance(raw, bytearray | memoryview):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        return None
    return _decode_view(raw, view)


class InitializeInput(msgspec.Struct, frozen=True, gc=False):
    """Raw inputs, decoded on the worker (untracked by the GC, like the facts)."""

    connection_id: int
    observed_at: float
    params: Any
    result: Any
    transport: str

    def facts(self) -> Sequence[Fact]:
        params = decode(self.params, InitializeParams)
        result = decode(self.result, InitializeResult) if self.result is not None else (
            InitializeResult())
        if params is None or result is None or self.transport not in TRANSPORTS:
            raise ValueError("unusable initialize params, result or transport")
        return (Initialized(self.connection_id, self.observed_at, self.transport,
                            params, result),)


class ResponseInput(msgspec.Struct, frozen=True, gc=False):
    connection_id: int
    observed_at: float
    method: str
    result: Any
    params: Any

    def facts(self) -> Sequence[Fact]:
        result = decode(self.result, ThreadResult)
        if result is None:
            raise ValueError("unusable thread result")
        params = decode(self.params, ThreadRequestParams) if self.params is not None else None
        method: ThreadMethod = self.method  # type: ignore[assignment]
        return (ThreadResponded(self.connection_id, self.observed_at, method, result, params),)


class ArchiveInput(msgspec.Struct, frozen=True, gc=False):
    connection_id: int
    observed_at: float
    action: str
    params: Any

    def facts(self) -> Sequence[Fact]:
        notification = decode(self.params, ThreadArchiveNotification)
        if notification is None or notification.thread_id is None:
            raise ValueError("unusable archive notification")
        return (ThreadArchiveChanged(self.connection_id, self.observed_at,
                                     notification.thread_id, self.action,  # type: ignore[arg-type]
                                     round(self.observed_at * 1000)),)


RawInput = InitializeInput | ResponseInput | ArchiveInput


def facts_of(item: RawInput | Fact) -> Sequence[Fact]:
    """The facts a queued item stands for, ready for the reducer."""
    facts = item.facts() if isinstance(item, RawInput) else (item,)
    return tuple(
        with_canonical_paths(fact) if isinstance(fact, SkillsInvoked) else fact
        for fact in facts
    )


def canonical(path: str | None) -> str | None:
    """``std::fs::canonicalize`` or the path as given, as the reference's skill id does."""
    if path is None:
        return None
    try:
        return os.path.realpath(path, strict=True)
    except (OSError, ValueError):
        return path


def with_canonical_paths(fact: SkillsInvoked) -> SkillsInvoked:
    invocations = tuple(
        msgspec.structs.replace(
            invocation,
            skill_path=canonical(invocation.skill_path) or invocation.skill_path,
            repo_root=canonical(invocation.repo_root),
        )
        for invocation in fact.invocations
    )
    return msgspec.structs.replace(fact, invocations=invocations)
