"""One task per sink: claim batches from the outbox, send them, settle them, retry with backoff.

Batching: a batch leaves as soon as the events committed for the sink fill it (count or bytes),
or ``linger`` seconds after its first event; rows left by an earlier run (the backlog) and rows
asked for by a flush leave at once. One request is in flight per sink, and a batch is retried
as the same batch (same ids, same idempotency key) until it is delivered or rejected; failures
never drop anything, the rows stay pending in the outbox.

What each answer does:

* 200 listing events refused one by one (our collector's ``rejected``: an event it cannot
  store, whatever the retry): the others are delivered, those are parked as rejected with their
  reason (``stats`` counts them, ``requeue`` sends them again), with a warning.
* 413 (too large): the batch is split in halves and each half sent, down to single events;
  later batches are capped at half the refused body. Only a single event that is itself
  refused is parked (rejected).
* 401, or credentials that cannot be read: the events stay pending; the shipper waits long
  (``auth_retry_s``) but retries at once when the sink's credentials change (a token file
  rewritten, codex refreshing its login).
* Rows leased by a process that died (``kill -9`` mid-request) are taken over at once: the
  owner's lock file tells (lease_owner.py).

At close (``drain(final=True)``), a sink waiting to retry tries at once; a sink that does not
answer at all (connection refused, an unwritable file) or whose credentials are missing is left
alone after that attempt instead of being retried until the deadline: its events stay pending
for the next run, and a proxy whose collector is down exits right after its child. A sink that
answers 5xx or 429 is retried, with backoff, until the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

import msgspec

from ._ratelimit import RateLimitedLog
from .outbox import Outbox
from .retry import RetryPolicy, Verdict
from .sink_base import Batch, SendResult, Sink
from .status import SinkStatus

# A lease must outlive one request plus the wait before its retry; past that another process
# may take the rows over (and the collector de-duplicates by event id).
LEASE_MARGIN_S = 30.0
# While waiting after a 401, how often to look whether the credentials changed.
CREDENTIALS_POLL_S = 1.0


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
        owner_alive: Callable[[str], bool] = lambda owner: True,
    ) -> None:
        self._sink = sink
        self._owner_alive = owner_alive
        # The largest body a 413 taught us to send (None: the configured limit).
        self._body_cap: int | None = None
        # Closing: one last attempt, no retries, no waiting.
        self._final = False
        self._interrupt = asyncio.Event()
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

    def use_outbox(self, outbox: Outbox) -> None:
        """The outbox was re-created (deleted, or damaged and moved aside): use the new one."""
        self._outbox = outbox

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

    async def drain(self, *, final: bool = False) -> None:
        """Return once nothing claimable is pending for the sink (sending without lingering).
        ``final``: the process is closing; a failed attempt ends the drain instead of a retry."""
        if final:
            self._final = True
            self._interrupt.set()  # cut a retry wait short: one last attempt now
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

    def _claim(self) -> Batch | None:
        return self._outbox.claim_batch(
            self.key,
            self._owner,
            max_events=self._limits.max_events,
            max_body_bytes=self._body_cap or self._limits.max_bytes,
            lease_s=self._lease_s(),
            group_by_originator=self._sink.groups_by_originator,
        )

    def _lease_s(self) -> float:
        return self._policy.timeout_total_s + LEASE_MARGIN_S

    def _release_dead_owners(self) -> bool:
        """Leases of processes that died are dropped; True if there were any."""
        owners = self._outbox.foreign_lease_owners(self.key, self._owner)
        dead = [owner for owner in owners if not self._owner_alive(owner)]
        if not dead:
            return False
        released = self._outbox.release_owners(dead)
        self._logger.info("%s: took over %d events leased by %d process(es) that died",
                          self.key, released, len(dead))
        return True

    async def _drain_ready(self, urgent: bool) -> None:
        while True:
            batch = self._claim()
            if batch is None and self._release_dead_owners():
                batch = self._claim()
            if batch is None:
                self._unsent_events = self._unsent_bytes = 0
                self._first_unsent_at = None
                self._idle.set()
                return
            self._account_claimed(batch)
            if not await self._deliver(batch):
                self._idle.set()  # closing and the sink failed: leave the rest for next time
                return
            if not urgent and not self._batch_ready_now():
                return

    def _account_claimed(self, batch: Batch) -> None:
        self._unsent_events = max(self._unsent_events - len(batch.seqs), 0)
        claimed_bytes = sum(len(p) + 1 for p in batch.payloads)
        self._unsent_bytes = max(self._unsent_bytes - claimed_bytes, 0)
        if self._unsent_events == 0:
            self._first_unsent_at = None

    async def _deliver(self, batch: Batch) -> bool:
        """Send until delivered or rejected (True); False when closing and the sink failed."""
        failures = 0
        while True:
            result = await self._sink.send(batch)
            if result.verdict is Verdict.DELIVERED:
                self._delivered(batch, result)
                return True
            if result.too_large and len(batch.seqs) > 1:
                return await self._split(batch)
            error = result.error or "unknown error"
            if result.verdict is Verdict.REJECTED:
                self._outbox.mark_rejected(self.key, batch.seqs, error)
                self._settled(batch, delivered=False, error=error)
                self._log.warning(
                    f"reject:{self.key}",
                    "%s rejected %d events (kept in the outbox as rejected; `requeue` sends "
                    "them again): %s",
                    self.key, len(batch.seqs), error,
                )
                return True
            failures += 1
            if result.auth_failed:
                delay = self._policy.auth_retry_s
            else:
                delay = self._policy.delay(failures, result.retry_after_s)
            lease_until = time.time() + delay + self._lease_s()
            self._outbox.record_failure(self.key, batch.seqs, error, self._owner, lease_until)
            with self._status_lock:
                self._status.failed_attempts += 1
                self._status.last_error = error
            if self._final and (result.unreachable or result.auth_failed):
                # Closing, and nothing answers (or the credentials are missing): no point in
                # waiting out the deadline. A sink that answers 5xx/429 is retried within it.
                return False
            self._log.warning(
                f"retry:{self.key}",
                "delivery to %s failed (%s); %d events kept, retrying in %.1f s%s",
                self.key, error, len(batch.seqs), delay,
                " or as soon as its credentials change" if result.auth_failed else "",
            )
            # Closing cuts a pause short once, for an attempt now (see drain).
            await self._pause(delay, watch_credentials=result.auth_failed)

    def _delivered(self, batch: Batch, result: SendResult) -> None:
        """Settle a delivered batch; events the receiver refused one by one (a collector's
        ``rejected`` list) are parked as rejected, with their reason, never dropped."""
        refused = {r.position: r.reason for r in result.refused
                   if 0 <= r.position < len(batch.seqs)}
        if not refused:
            self._outbox.mark_delivered(self.key, batch.seqs)
            self._settled(batch, delivered=True, error=None)
            self._log_delivered(batch)
            return
        kept = [i for i in range(len(batch.seqs)) if i not in refused]
        self._outbox.mark_delivered(self.key, [batch.seqs[i] for i in kept])
        self._settled(_pick(batch, kept), delivered=True, error=None)
        self._log_delivered(_pick(batch, kept))
        for reason in dict.fromkeys(refused.values()):
            positions = [i for i, r in refused.items() if r == reason]
            self._outbox.mark_rejected(self.key, [batch.seqs[i] for i in positions], reason)
            self._settled(_pick(batch, positions), delivered=False, error=reason)
        self._log.warning(
            f"refused:{self.key}",
            "%s refused %d of %d events one by one (kept in the outbox as rejected; `stats` "
            "counts them, `requeue` sends them again): %s",
            self.key, len(refused), len(batch.seqs), next(iter(refused.values())),
        )

    def _log_delivered(self, batch: Batch) -> None:
        """One -v line a batch: where events went (a debugging line, not for every run)."""
        self._logger.debug("%s: delivered %d events (%d bytes)", self.key, len(batch.seqs),
                           sum(len(p) for p in batch.payloads))

    async def _split(self, batch: Batch) -> bool:
        """413: send each half of the batch on its own (recursively, down to single events)."""
        body = len(b'{"events":[]}') + sum(len(p) + 1 for p in batch.payloads)
        cap = max(body // 2, 1)
        if self._body_cap is None or cap < self._body_cap:
            self._body_cap = cap
            self._logger.warning(
                "%s refused a %d-byte batch as too large (413): splitting it, and sending "
                "batches of at most %d bytes from now on", self.key, body, cap)
        half = len(batch.seqs) // 2
        for part in (range(half), range(half, len(batch.seqs))):
            # The whole batch was leased at claim time; sending the first piece may have taken
            # longer than that lease (retries), and another process may have claimed the rest
            # since: send only what is still ours, with a fresh lease.
            held = set(self._outbox.extend_lease(
                self.key, [batch.seqs[i] for i in part], self._owner,
                time.time() + self._lease_s()))
            mine = [i for i in part if batch.seqs[i] in held]
            if len(mine) < len(part):
                lost = len(part) - len(mine)
                self._account_lost(lost)
                self._logger.info("%s: %d events of a split batch were taken over by another "
                                  "process; it sends them", self.key, lost)
            if mine and not await self._deliver(_pick(batch, mine)):
                return False
        return True

    def _account_lost(self, n: int) -> None:
        # Another process settles them; this one no longer counts them as pending.
        with self._status_lock:
            self._status.pending = max(self._status.pending - n, 0)

    async def _pause(self, delay: float, *, watch_credentials: bool) -> None:
        """Wait ``delay`` before a retry; cut short by closing, or (``watch_credentials``) by a
        change of the sink's credentials, polled once a second (a ``stat``)."""
        version = self._sink.credentials_version() if watch_credentials else None
        deadline = time.monotonic() + delay
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            step = min(remaining, CREDENTIALS_POLL_S) if watch_credentials else remaining
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._interrupt.wait(), step)
            if self._interrupt.is_set():
                self._interrupt.clear()
                return
            if watch_credentials and self._sink.credentials_version() != version:
                return

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


def _pick(batch: Batch, positions: list[int]) -> Batch:
    return Batch(seqs=[batch.seqs[i] for i in positions],
                 event_ids=[batch.event_ids[i] for i in positions],
                 payloads=[batch.payloads[i] for i in positions], originator=batch.originator)
