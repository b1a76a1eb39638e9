"""One task per sink: claim batches from the outbox, send them, settle them, retry with backoff.

Batching: a batch leaves as soon as the events committed for the sink fill it (count or bytes),
or ``linger`` seconds after its first event; rows left by an earlier run (the backlog) and rows
asked for by a flush leave at once. One request is in flight per sink, and a batch is retried
as the same batch (same ids, same idempotency key) until it is delivered or rejected; failures
never drop anything, the rows stay pending in the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import msgspec

from ._ratelimit import RateLimitedLog
from .outbox import Outbox
from .retry import RetryPolicy, Verdict
from .sink_base import Batch, Sink
from .status import SinkStatus

# A lease must outlive one request plus the wait before its retry; past that another process
# may take the rows over (and the collector de-duplicates by event id).
LEASE_MARGIN_S = 30.0


class BatchLimits(msgspec.Struct, frozen=True):
    max_events: int = 100
    max_bytes: int = 256 * 1024
    linger_s: float = 1.0


class Shipper:
    def __init__(
        self,
        sink: Sink,
        outbox: Outbox,
        owner: str,
        limits: BatchLimits,
        policy: RetryPolicy,
        status: SinkStatus,
        status_lock: threading.Lock,
        log: RateLimitedLog,
        logger: logging.Logger,
    ) -> None:
        self._sink = sink
        self._outbox = outbox
        self._owner = owner
        self._limits = limits
        self._policy = policy
        self._status = status
        self._status_lock = status_lock
        self._log = log
        self._logger = logger
        # Committed-but-unclaimed events this process knows of, to decide when a batch is full.
        self._unsent_events = 0
        self._unsent_bytes = 0
        self._first_unsent_at: float | None = None
        self._flush_requests = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()

    @property
    def key(self) -> str:
        return self._sink.key

    def notify(self, sizes: list[int]) -> None:
        """Events were committed for this sink (called on the delivery loop)."""
        if not sizes:
            return
        if self._unsent_events == 0:
            self._first_unsent_at = time.monotonic()
        self._unsent_events += len(sizes)
        self._unsent_bytes += sum(sizes) + len(sizes)
        with self._status_lock:
            self._status.pending += len(sizes)
        self._idle.clear()
        self._wake.set()

    async def drain(self) -> None:
        """Return once nothing claimable is pending for the sink (sending without lingering)."""
        self._flush_requests += 1
        self._idle.clear()
        self._wake.set()
        try:
            await self._idle.wait()
        finally:
            self._flush_requests -= 1

    async def run(self, *, backlog: bool) -> None:
        """Ship until cancelled. ``backlog``: earlier runs left rows pending; they are old
        already, so they are sent at once rather than after a linger."""
        urgent = backlog
        failures = 0
        while True:
            try:
                if not urgent:
                    await self._until_batch_ready()
                await self._drain_ready(urgent)
                urgent = False
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the shipper must survive anything (disk full, bugs)
                failures += 1
                self._log.warning(
                    f"ship:{self.key}", "delivery to %s failed: %s", self.key, exc
                )
                await asyncio.sleep(self._policy.delay(failures))
                urgent = True

    def _batch_ready_now(self) -> bool:
        if self._flush_requests and not self._idle.is_set():
            # A flush is waiting and we have not yet seen the sink empty since it asked.
            return True
        if self._unsent_events == 0:
            return False
        if (
            self._unsent_events >= self._limits.max_events
            or self._unsent_bytes >= self._limits.max_bytes
        ):
            return True
        assert self._first_unsent_at is not None
        return time.monotonic() - self._first_unsent_at >= self._limits.linger_s

    async def _until_batch_ready(self) -> None:
        while not self._batch_ready_now():
            self._wake.clear()
            timeout = None
            if self._first_unsent_at is not None and self._unsent_events:
                timeout = self._first_unsent_at + self._limits.linger_s - time.monotonic()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return

    async def _drain_ready(self, urgent: bool) -> None:
        while True:
            batch = self._outbox.claim_batch(
                self.key,
                self._owner,
                max_events=self._limits.max_events,
                max_body_bytes=self._limits.max_bytes,
                lease_s=self._policy.timeout_total_s + LEASE_MARGIN_S,
                group_by_originator=self._sink.groups_by_originator,
            )
            if batch is None:
                self._unsent_events = self._unsent_bytes = 0
                self._first_unsent_at = None
                self._idle.set()
                return
            self._account_claimed(batch)
            await self._deliver(batch)
            if not urgent and not self._batch_ready_now():
                return

    def _account_claimed(self, batch: Batch) -> None:
        self._unsent_events = max(self._unsent_events - len(batch.seqs), 0)
        claimed_bytes = sum(len(p) + 1 for p in batch.payloads)
        self._unsent_bytes = max(self._unsent_bytes - claimed_bytes, 0)
        if self._unsent_events == 0:
            self._first_unsent_at = None

    async def _deliver(self, batch: Batch) -> None:
        failures = 0
        while True:
            result = await self._sink.send(batch)
            if result.verdict is Verdict.DELIVERED:
                self._outbox.mark_delivered(self.key, batch.seqs)
                self._settled(batch, delivered=True, error=None)
                return
            error = result.error or "unknown error"
            if result.verdict is Verdict.REJECTED:
                self._outbox.mark_rejected(self.key, batch.seqs, error)
                self._settled(batch, delivered=False, error=error)
                self._log.warning(
                    f"reject:{self.key}",
                    "%s rejected %d events (kept in the outbox as rejected): %s",
                    self.key, len(batch.seqs), error,
                )
                return
            failures += 1
            delay = self._policy.delay(failures, result.retry_after_s)
            lease_until = time.time() + delay + self._policy.timeout_total_s + LEASE_MARGIN_S
            self._outbox.record_failure(self.key, batch.seqs, error, self._owner, lease_until)
            with self._status_lock:
                self._status.failed_attempts += 1
                self._status.last_error = error
            self._log.warning(
                f"retry:{self.key}",
                "delivery to %s failed (%s); %d events kept, retrying in %.1f s",
                self.key, error, len(batch.seqs), delay,
            )
            await asyncio.sleep(delay)

    def _settled(self, batch: Batch, *, delivered: bool, error: str | None) -> None:
        n = len(batch.seqs)
        with self._status_lock:
            self._status.pending = max(self._status.pending - n, 0)
            if delivered:
                self._status.delivered += n
                self._status.last_delivered_at = time.time()
            else:
                self._status.rejected += n
                self._status.last_error = error
