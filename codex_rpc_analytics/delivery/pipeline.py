"""``Delivery``: the one object the rest of the program hands its encoded events to.

Threads: callers (the proxy's threads, asyncio code on other loops) only append to an in-memory
queue under a lock. One background thread runs its own asyncio loop, which owns everything else:
the SQLite connection, the aiohttp sessions, one committer task and one shipper task per sink.
So SQLite is only ever touched from that thread, and no caller ever waits for disk or network.

Commit: the first ``submit`` after the queue drained wakes the committer through
``call_soon_threadsafe``; it writes whatever is queued at once (a few ms), well inside the 200 ms
promised to callers. If SQLite refuses (disk full, unwritable directory) events stay in memory,
up to ``max_queued_events`` / ``max_queued_bytes``, beyond which new events are dropped and
counted, and the committer retries with backoff.

The outbox looks after itself: a file that is not a database (or a damaged one) is moved aside
as ``outbox.sqlite3.corrupt-<time>`` and a fresh one started, with one warning; a deleted one
(or one another process moved aside) is re-created before the next commit; settled events
older than ``retention_days`` are deleted at start and then hourly; a sink never has more than
``max_pending_events`` pending (the oldest beyond are dropped and counted).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import msgspec

from ._ratelimit import RateLimitedLog
from .codex_config import codex_opt_out, load_codex_config, resolve_codex_home
from .lease_owner import LeaseOwner, is_alive, owner_pid
from .outbox import (
    COMMIT_CHUNK,
    OUTBOX_FILENAME,
    Outbox,
    OutboxCorrupt,
    OutboxError,
    is_corruption,
    loose_permissions,
)
from .retry import RetryPolicy
from .shipper import BatchLimits, Shipper
from .sink_base import Sink, SinkDisabled, SinkEnv, SinkSpec
from .status import DeliveryStatus, FlushResult, SinkStatus

DEFAULT_LOGGER = "codex_rpc_analytics.delivery"
# Each event id travels in a request header; 200 ids are ~7.4 KB, under the common 8 KiB limit.
MAX_BATCH_EVENTS = 200
# How long close()/flush() wait beyond their own timeout for the loop to answer at all.
_ANSWER_GRACE_S = 2.0
# Retention and the pending cap are enforced at start and then this often.
UPKEEP_INTERVAL_S = 3600.0


class Delivery:
    def __init__(
        self,
        *,
        state_dir: Path,
        sinks: Sequence[SinkSpec],
        codex_home: Path | None = None,
        batch_max_events: int = 100,
        batch_max_bytes: int = 256 * 1024,
        batch_linger_s: float = 1.0,
        logger: logging.Logger | None = None,
        retry_policy: RetryPolicy | None = None,
        max_queued_events: int = 100_000,
        max_queued_bytes: int = 64 * 1024 * 1024,
        retention_days: float = 30.0,
        max_pending_events: int = 100_000,
    ) -> None:
        if not 1 <= batch_max_events <= MAX_BATCH_EVENTS:
            raise ValueError(f"batch_max_events must be between 1 and {MAX_BATCH_EVENTS}")
        if batch_max_bytes < 1 or batch_linger_s < 0:
            raise ValueError("batch_max_bytes must be positive and batch_linger_s >= 0")
        self._state_dir = state_dir
        self._specs = list({spec.key: spec for spec in sinks}.values())
        self._codex_home = resolve_codex_home(codex_home)
        self._limits = BatchLimits(batch_max_events, batch_max_bytes, batch_linger_s)
        self._policy = retry_policy or RetryPolicy()
        self._logger = logger or logging.getLogger(DEFAULT_LOGGER)
        self._max_queued_events = max_queued_events
        self._max_queued_bytes = max_queued_bytes
        self._retention_s = retention_days * 86400.0
        self._max_pending = max_pending_events
        self._lease_owner = LeaseOwner(state_dir)
        self._owner = self._lease_owner.id
        self._outbox_failed = asyncio.Event()  # an open attempt failed (set until one works)
        self._warned_permissions = False

        # Shared with caller threads; guarded by _lock.
        self._lock = threading.Lock()
        self._queue: deque[tuple[str, bytes, float]] = deque()
        self._queued_bytes = 0
        self._accepting = True
        self._wake_pending = False
        # Whether the queue drains: the committer runs and its last commit (or open) worked.
        self._draining = False
        self._status = DeliveryStatus(
            state_dir=str(state_dir),
            running=False,
            sinks=[SinkStatus(key=s.key, kind=s.kind, enabled=False) for s in self._specs],
        )
        self._sink_status = {s.key: s for s in self._status.sinks}
        self._log = RateLimitedLog(self._logger)

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._close_lock = threading.Lock()  # a second close() waits for the first one's result
        self._close_result: FlushResult | None = None

        # Owned by the delivery loop.
        self._outbox: Outbox | None = None
        self._sinks: list[Sink] = []
        self._shippers: list[Shipper] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._commit_wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._outbox_generation = 0
        self._stopped = asyncio.Event()

    # -- caller side ----------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("Delivery.start() called twice")
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._thread_main, name="codex-rpc-analytics-delivery", daemon=True
            )
            self._wake_pending = True  # the committer looks at the queue when it starts
        self._thread.start()

    def submit(self, events: Sequence[tuple[str, bytes]]) -> None:
        try:
            now = time.time()
            with self._lock:
                if not self._accepting:
                    self._status.submitted += len(events)
                    self._status.dropped += len(events)
                    self._log.warning("closed", "events submitted after close() were dropped")
                    return
                for event_type, payload in events:
                    self._status.submitted += 1
                    if not isinstance(payload, bytes):
                        if not isinstance(payload, bytearray | memoryview):
                            self._status.dropped += 1
                            self._log.warning("type", "dropped an event whose payload is not bytes")
                            continue
                        payload = bytes(payload)
                    if (
                        len(self._queue) >= self._max_queued_events
                        or self._queued_bytes + len(payload) > self._max_queued_bytes
                    ):
                        self._status.dropped += 1
                        self._log.warning(
                            "queue-full",
                            "analytics event dropped: %d events wait in memory for the outbox",
                            len(self._queue),
                        )
                        continue
                    self._queue.append((event_type, payload, now))
                    self._queued_bytes += len(payload)
                signal = not self._wake_pending and self._loop is not None
                if signal:
                    self._wake_pending = True
                loop = self._loop
            if signal and loop is not None:
                loop.call_soon_threadsafe(self._commit_wake.set)
        except Exception as exc:  # never raise into the proxy's hot path
            self._logger.debug("submit failed: %r", type(exc).__name__)

    def flush(self, timeout: float) -> FlushResult:
        future = self._call(self._flush_inner(timeout))
        if future is None:
            return self._offline_result()
        try:
            return future.result(timeout + _ANSWER_GRACE_S)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            future.cancel()
            return self._offline_result()

    async def flush_async(self, timeout: float) -> FlushResult:
        future = self._call(self._flush_inner(timeout))
        if future is None:
            return self._offline_result()
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout + _ANSWER_GRACE_S)
        except TimeoutError:
            return self._offline_result()

    def close(self, timeout: float) -> FlushResult:
        with self._close_lock:
            if self._close_result is None:
                self._close_result = self._close(timeout)
            return self._close_result

    def _close(self, timeout: float) -> FlushResult:
        with self._lock:
            self._accepting = False
            started = self._thread is not None
        if not started:
            # Events submitted before start() still deserve the outbox.
            self.start()
        future = self._call(self._shutdown(timeout))
        result = None
        if future is not None:
            try:
                result = future.result(timeout + _ANSWER_GRACE_S)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                future.cancel()
        assert self._thread is not None
        self._thread.join(_ANSWER_GRACE_S)
        return result if result is not None else self._offline_result()

    async def close_async(self, timeout: float) -> FlushResult:
        """``close`` for asyncio callers: runs the blocking close in a worker thread."""
        return await asyncio.to_thread(self.close, timeout)

    def uncommitted(self) -> int:
        """Events submitted and waiting in memory for the outbox, while commits work (0 when
        they fail, before ``start`` and once the committer stopped: then waiting for them
        would be waiting for nothing). Lock-free and cheap: a proxy asks before each slice of
        analysis, and waits a little for the committer when this is high (adapters/session.py,
        ``delivery_behind``)."""
        return len(self._queue) if self._draining else 0

    def status(self) -> DeliveryStatus:
        with self._lock:
            return msgspec.structs.replace(
                self._status,
                queued=len(self._queue),
                sinks=[msgspec.structs.replace(s) for s in self._status.sinks],
            )

    def _call(
        self, coro: Coroutine[Any, Any, FlushResult]
    ) -> concurrent.futures.Future[FlushResult] | None:
        """Run ``coro`` on the delivery loop; None when that loop is not running."""
        loop, thread = self._loop, self._thread
        if threading.current_thread() is thread:
            coro.close()
            raise RuntimeError("flush/close cannot be called from the delivery thread")
        if loop is None or thread is None or not thread.is_alive() or loop.is_closed():
            coro.close()
            return None
        try:
            return asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop closed in between
            coro.close()
            return None

    def leased_elsewhere(self) -> dict[int | None, int]:
        """Pending events of this delivery's sinks that another *living* process is sending
        right now (leased), by that process's pid (None: unknown). Any thread."""
        try:
            outbox = Outbox.open_readonly(self._state_dir)
        except OutboxError:
            return {}
        held: dict[int | None, int] = {}
        try:
            for spec in self._specs:
                owners = [owner for owner in outbox.foreign_lease_owners(spec.key, self._owner)
                          if is_alive(self._state_dir, owner)]
                for owner in owners:
                    count = outbox.leased_count(spec.key, [owner])
                    if count:
                        pid = owner_pid(owner)
                        held[pid] = held.get(pid, 0) + count
        except sqlite3.Error:
            return held
        finally:
            outbox.close()
        return held

    def _offline_result(self) -> FlushResult:
        """A result read from a fresh connection, when the delivery loop cannot answer."""
        with self._lock:
            uncommitted = len(self._queue)
        try:
            outbox = Outbox.open_readonly(self._state_dir)
        except OutboxError:
            return FlushResult(complete=False, uncommitted=uncommitted, sinks={})
        try:
            counts = outbox.sink_counts([s.key for s in self._specs])
        except sqlite3.Error:
            counts = {}
        finally:
            outbox.close()
        complete = uncommitted == 0 and all(c.pending == 0 for c in counts.values())
        return FlushResult(complete=complete, uncommitted=uncommitted, sinks=counts)

    # -- delivery loop --------------------------------------------------------------------------

    def _thread_main(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException:
            self._logger.exception("analytics delivery thread stopped")
        finally:
            with self._lock:
                self._status.running = False
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        with self._lock:
            self._status.running = True
        self._open_sinks()
        committer = asyncio.create_task(self._commit_loop())
        self._tasks.append(committer)
        await self._stopped.wait()

    def _open_sinks(self) -> None:
        if not self._specs:
            return
        codex_config = load_codex_config(self._codex_home)
        opt_out = codex_opt_out(codex_config)
        if opt_out is not None:
            # The user's opt-out in codex is total: no event leaves through any sink, ours
            # included. Events are still committed to the local outbox (stats, events).
            self._logger.warning("analytics sinks disabled (%s): %s; events are kept in the "
                                 "local outbox only", ", ".join(s.key for s in self._specs),
                                 opt_out)
            with self._lock:
                for spec in self._specs:
                    self._sink_status[spec.key].disabled_reason = opt_out
            return
        env = SinkEnv(codex_home=self._codex_home, codex_config=codex_config,
                      policy=self._policy, logger=self._logger)
        for spec in self._specs:
            try:
                opened = spec.open(env)
            except Exception as exc:
                opened = SinkDisabled(f"cannot open sink: {type(exc).__name__}: {exc}")
            status = self._sink_status[spec.key]
            if isinstance(opened, SinkDisabled):
                # Once per run: codex itself discards silently, but a user who asked for a
                # sink deserves to know why nothing arrives there.
                self._logger.warning("analytics sink %s disabled: %s", spec.key, opened.reason)
                with self._lock:
                    status.disabled_reason = opened.reason
            else:
                self._sinks.append(opened)
                with self._lock:
                    status.enabled = True

    def _open_outbox(self) -> bool:
        try:
            try:
                outbox = Outbox.open(self._state_dir)
            except OutboxCorrupt as exc:
                self._move_aside(str(exc))
                outbox = Outbox.open(self._state_dir)
            self._lease_owner.acquire()
            self._upkeep(outbox)
            counts = outbox.sink_counts([s.key for s in self._specs])
        except (OutboxError, sqlite3.Error, OSError) as exc:
            with self._lock:
                self._status.commit_errors += 1
                self._status.last_commit_error = str(exc)
            self._log.warning("outbox-open", "analytics outbox unavailable: %s", exc)
            self._outbox_failed.set()
            return False
        self._outbox_failed.clear()
        self._warn_loose_permissions()
        if self._outbox_generation:
            # Re-opened (deleted, or moved aside): the shippers keep working on the new file.
            self._outbox = outbox
            for shipper in self._shippers:
                shipper.use_outbox(outbox)
            return True
        self._outbox_generation += 1
        self._outbox = outbox
        with self._lock:
            for key, count in counts.items():
                self._sink_status[key].pending = count.pending
        alive = self._owner_alive
        for sink in self._sinks:
            shipper = Shipper(
                sink, outbox, self._owner, self._limits, self._policy,
                self._sink_status[sink.key], self._lock, self._log, self._logger,
                owner_alive=alive,
            )
            self._shippers.append(shipper)
            backlog = counts[sink.key].pending > 0
            self._tasks.append(asyncio.create_task(shipper.run(backlog=backlog)))
        self._tasks.append(asyncio.create_task(self._upkeep_loop()))
        self._ready.set()
        return True

    def _owner_alive(self, owner: str) -> bool:
        return is_alive(self._state_dir, owner)

    def _move_aside(self, reason: str) -> None:
        """A damaged outbox: keep it for inspection under a new name, start a fresh one."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = self._state_dir / OUTBOX_FILENAME
        target = path.with_name(f"{OUTBOX_FILENAME}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}{suffix}", f"{target}{suffix}")
        self._logger.warning("analytics outbox %s; moved aside to %s, starting a fresh one "
                             "(what it held is not shipped)", reason, target)

    def _warn_loose_permissions(self) -> None:
        if self._warned_permissions:
            return
        loose = loose_permissions(self._state_dir)
        if loose:
            self._warned_permissions = True
            self._logger.warning("analytics outbox readable by others: %s; chmod it (0700 "
                                 "directory, 0600 files)", ", ".join(loose))

    def _upkeep(self, outbox: Outbox) -> None:
        """Retention and the pending cap (at open, then hourly)."""
        pruned = outbox.prune_settled(time.time() - self._retention_s)
        if pruned:
            self._logger.info("analytics outbox: deleted %d settled events older than %g days",
                              pruned, self._retention_s / 86400)
        for sink in self._sinks:
            self._cap_pending(outbox, sink.key)

    def _cap_pending(self, outbox: Outbox, key: str) -> None:
        dropped = outbox.enforce_pending_cap(key, self._max_pending)
        if dropped:
            with self._lock:
                status = self._sink_status[key]
                status.pending = max(status.pending - dropped, 0)
                status.dropped += dropped
            self._log.warning(f"cap:{key}", "%s: more than %d events pending; dropped the "
                              "oldest %d (counted)", key, self._max_pending, dropped)

    async def _upkeep_loop(self) -> None:
        while True:
            await asyncio.sleep(UPKEEP_INTERVAL_S)
            if self._outbox is not None:
                try:
                    self._upkeep(self._outbox)
                except sqlite3.Error as exc:
                    self._log.warning("upkeep", "analytics outbox upkeep failed: %s", exc)

    async def _commit_loop(self) -> None:
        self._draining = True
        try:
            await self._commit_forever()
        finally:  # closed, or a bug: nothing drains any more
            self._draining = False

    async def _commit_forever(self) -> None:
        failures = 0
        while True:
            if self._outbox is not None and not self._outbox.is_current():
                # Deleted under us (or moved aside by another process): a connection to an
                # unlinked file would commit into nothing. Re-create it.
                self._logger.warning("analytics outbox %s disappeared; re-creating it",
                                     self._outbox.path)
                self._close_outbox()
            ok = self._outbox is not None or self._open_outbox()
            if ok:
                ok = await self._commit_queued()
            self._draining = ok
            if ok:
                failures = 0
                await self._commit_wake.wait()
                self._commit_wake.clear()
            else:
                failures += 1
                await asyncio.sleep(min(0.1 * 2 ** min(failures, 10), 5.0))

    def _take(self, limit: int) -> list[tuple[str, bytes, float]]:
        with self._lock:
            if not self._queue:
                self._wake_pending = False
                return []
            items = [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]
            self._queued_bytes -= sum(len(p) for _, p, _ in items)
            return items

    async def _commit_queued(self) -> bool:
        """Commit everything queued, in short transactions. False if SQLite refused."""
        outbox = self._outbox
        if outbox is None:
            return False
        keys = [sink.key for sink in self._sinks]
        while items := self._take(COMMIT_CHUNK):
            try:
                outbox.commit(items, keys)
            except (sqlite3.Error, OSError) as exc:
                with self._lock:
                    self._queue.extendleft(reversed(items))
                    self._queued_bytes += sum(len(p) for _, p, _ in items)
                    self._status.commit_errors += 1
                    self._status.last_commit_error = str(exc)
                if is_corruption(exc):
                    self._close_outbox()
                    self._move_aside(f"{outbox.path} is damaged: {exc}")
                    return False
                self._log.warning(
                    "commit", "cannot commit analytics events (kept in memory): %s", exc
                )
                return False
            with self._lock:
                self._status.committed += len(items)
                over = [key for key in keys if self._sink_status[key].pending + len(items)
                        > self._max_pending]
            sizes = [len(payload) for _, payload, _ in items]
            for shipper in self._shippers:
                shipper.notify(sizes)
            for key in over:
                self._cap_pending(outbox, key)
            await asyncio.sleep(0)  # let the shippers and other work breathe between chunks
        return True

    async def _flush_inner(self, timeout: float, *, final: bool = False) -> FlushResult:
        """Commit and deliver what is pending, within ``timeout``. ``final`` (closing): do not
        wait for an outbox that cannot be opened, nor for a sink that does not answer at all:
        nothing more can be committed or sent in this run, the rest stays for the next one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waits = [asyncio.ensure_future(self._ready.wait())]
        if final:
            waits.append(asyncio.ensure_future(self._outbox_failed.wait()))
        _, waiting = await asyncio.wait(waits, timeout=timeout,
                                        return_when=asyncio.FIRST_COMPLETED)
        for wait in waiting:
            wait.cancel()
        if not self._ready.is_set():
            return self._result()
        # Even when the disk refuses new commits, what is committed can still be delivered.
        await self._commit_queued()
        if self._shippers:
            drains = [asyncio.create_task(s.drain(final=final)) for s in self._shippers]
            _, unfinished = await asyncio.wait(drains, timeout=max(deadline - loop.time(), 0))
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
        return self._result()

    def _result(self) -> FlushResult:
        with self._lock:
            uncommitted = len(self._queue)
        counts = {}
        if self._outbox is not None:
            try:
                counts = self._outbox.sink_counts([s.key for s in self._specs])
            except sqlite3.Error as exc:
                self._log.warning("counts", "cannot read the outbox: %s", exc)
        complete = (
            self._outbox is not None
            and uncommitted == 0
            and all(c.pending == 0 for c in counts.values())
        )
        return FlushResult(complete=complete, uncommitted=uncommitted, sinks=counts)

    async def _shutdown(self, timeout: float) -> FlushResult:
        lost = 0
        try:
            await self._flush_inner(timeout, final=True)
        finally:
            # The hard deadline: cancel in-flight requests and retry sleeps; the rows they held
            # stay pending in the outbox for the next run.
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with self._lock:
                lost = len(self._queue)
                self._status.dropped += lost
                self._queue.clear()
                self._queued_bytes = 0
            if lost:
                self._logger.error("%d analytics events could not be committed and are lost", lost)
            if self._outbox is not None:
                try:
                    self._outbox.release(self._owner)
                except sqlite3.Error as exc:
                    self._logger.warning("cannot release outbox leases: %s", exc)
            self._lease_owner.release()
            for sink in self._sinks:
                try:
                    await sink.close()
                except Exception as exc:
                    self._logger.debug("closing %s: %s", sink.key, exc)
            # aiohttp's graceful-shutdown advice: let transports finish closing.
            await asyncio.sleep(0)
        result = self._result()
        if lost:
            result = FlushResult(complete=False, uncommitted=lost, sinks=result.sinks)
        with self._lock:
            committed = self._status.committed
        self._logger.debug("outbox %s: %d events committed by this process", self._state_dir,
                           committed)
        for key, counts in sorted(result.sinks.items()):
            self._logger.debug("%s at close: delivered %d, pending %d, rejected %d", key,
                               counts.delivered, counts.pending, counts.rejected)
        self._close_outbox()
        self._stopped.set()
        return result

    def _close_outbox(self) -> None:
        if self._outbox is not None:
            with contextlib.suppress(sqlite3.Error):
                self._outbox.close()
            self._outbox = None
