"""What every sink is: a parsed spec (pure data) and a runtime object that sends batches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import msgspec

from .codex_config import CodexConfig
from .retry import RetryPolicy, Verdict


class SinkSpecError(ValueError):
    """A ``--sink`` value that cannot be used; the message is one line, fit for a CLI error."""


class Batch(msgspec.Struct, frozen=True):
    """Events claimed from the outbox for one request, in outbox order.

    ``originator`` is the ``app_server_client.product_client_id`` shared by every event of the
    batch (batches are grouped by it so the ``originator`` header is true for all of them).
    """

    seqs: list[int]
    event_ids: list[str]
    payloads: list[bytes]
    originator: str | None


class RefusedEvent(msgspec.Struct, frozen=True):
    """One event of a delivered batch that the receiver refused on its own (a collector's
    ``rejected`` list: OTLP's partial success); ``position`` is its place in the batch."""

    position: int
    reason: str


class SendResult(msgspec.Struct, frozen=True):
    verdict: Verdict
    # Safe to store and log: sinks redact credentials before building it.
    error: str | None = None
    retry_after_s: float | None = None
    # The receiver refused the credentials (401), or they could not be read: the events are
    # not at fault, they wait (long) until the credentials change.
    auth_failed: bool = False
    # 413: the body was too large for the receiver; the shipper splits the batch.
    too_large: bool = False
    # No answer at all (connection refused, DNS, a file that cannot be written): closing does
    # not wait for such a sink to come back within its deadline.
    unreachable: bool = False
    # DELIVERED, except these events, which the receiver refused one by one: parked as
    # rejected in the outbox (``requeue`` sends them again), never dropped silently.
    refused: list[RefusedEvent] = msgspec.field(default_factory=list)


class SinkEnv(msgspec.Struct, frozen=True):
    """What opening a sink may need from the process around it."""

    codex_home: Path
    codex_config: CodexConfig
    policy: RetryPolicy
    logger: logging.Logger


class SinkDisabled(msgspec.Struct, frozen=True):
    """A configured sink that must not send in this run (opt-out, no ChatGPT login, ...)."""

    reason: str


class Sink(Protocol):
    @property
    def key(self) -> str: ...

    def credentials_version(self) -> object:
        """Changes when the sink's credentials may have changed (None: it has none)."""
        ...

    @property
    def groups_by_originator(self) -> bool: ...

    async def send(self, batch: Batch) -> SendResult: ...

    async def close(self) -> None: ...


class SinkSpec(msgspec.Struct, frozen=True):
    """Base of every parsed ``--sink`` value. ``key`` identifies the sink in the outbox, so it
    must be stable across runs and must parse back to an equal spec."""

    @property
    def key(self) -> str:
        raise NotImplementedError

    @property
    def kind(self) -> str:
        raise NotImplementedError

    def open(self, env: SinkEnv) -> Sink | SinkDisabled:
        raise NotImplementedError
