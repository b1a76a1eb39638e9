"""The stdio proxy: ``codex-rpc-analytics proxy -- codex app-server``.

Threads: the main thread runs the relay and, when the relay is idle, the analytics
(relay_loop.py); delivery has its own thread (``submit`` is an append), pylsp's executor
answers ``rpcAnalytics/*`` requests. Relay first: analytics only runs when no fd is ready.

Lifecycle (docs/real-codex-peer.md §7.4: SDKs close stdin, send SIGTERM at once and SIGKILL
2 s later). The rule is that the client sees what it would see without the proxy:

* Client EOF closes the child's stdin; the proxy then waits for the child as long as it takes
  (that is the child's business, as with a shell).
* SIGTERM, SIGINT and SIGHUP are forwarded to the child's process group (the child leads its
  own, so a terminal's Ctrl-C reaches it once, through us, and reaches whatever it spawned).
  From the first signal the proxy keeps relaying and gives the child ``grace - reserve``
  seconds (1.0 s of the default 1.5 s) to exit; if it is still running then, analytics end
  (what is queued is analysed, the session is closed, the recording written) and delivery is
  closed within what is left of ``grace``, so every event is committed and shipped inside the
  grace. The proxy then keeps relaying (not analysing) and waits for the child, and exits with
  the child's status, whenever that comes: exactly what the client would have seen from the
  child itself.
* The child is started with ``PR_SET_PDEATHSIG = SIGKILL`` (Linux): when the SDK SIGKILLs the
  proxy 2 s after its SIGTERM, the child dies with it, as it would have been SIGKILLed
  directly, and is never orphaned.
* When the child exits by itself, analytics and delivery get ``grace`` seconds from then
  (from the signal, if one came first). What the child wrote before it exited is relayed
  first (bounded by the same budget).
* The client-facing stdout is closed as soon as the child's stdout ends, once every
  ``rpcAnalytics/*`` request read before is answered (at once if it ended inside a line: no
  answer could be put out). If the time to drain runs out first,
  analytics end there, so that each of them still gets an answer (analytics-ended, when it
  had none yet: extensions.py) before the stdout closes. When the client's stdout goes away
  (EPIPE), the child's stdout is closed too, so the child gets EPIPE/SIGPIPE on its next
  write, as it would writing to the client directly.
* Exit status: the child's, 128+N if a signal N ended it. A command that cannot be started
  is a one-line error and 127 (not found) or 126 (not executable), as a shell reports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ..delivery import BatchSettings, Delivery, OutboxSettings, SinkSpec
from .proxy_lines import PassThroughFilter
from .recording import Recorder
from .relay_loop import DEFAULT_SPIN_S, RelayLoop
from .session import DEFAULT_MAX_BACKLOG_BYTES, TapSession

DEFAULT_GRACE_S = 1.5
# Of the grace after a signal, at most this much is kept for analytics and delivery.
MAX_FLUSH_RESERVE_S = 0.5
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Delivery's thread may hold the GIL for the whole switch interval (5 ms by default) while the
# relay waits to run again after poll() returned; 0.5 ms bounds that wait.
SWITCH_INTERVAL_S = 0.0005
PIPE_SIZE = 1 << 20
PR_SET_PDEATHSIG = 1
# After a post-grace exit of the child, how long its last output may take to reach the client.
LATE_EXIT_DRAIN_S = 0.25


class ChildStartError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ProxyConfig:
    command: list[str]
    state_dir: Path
    sinks: Sequence[SinkSpec] = ()
    codex_home: Path | None = None
    grace: float = DEFAULT_GRACE_S
    recorder: Recorder | None = None
    max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES
    argv: list[str] = field(default_factory=list)
    spin: float = DEFAULT_SPIN_S  # relay_loop.py: poll without sleeping this long after a message
    # False: a plain relay (the config file turned analytics off, or could not be read): no
    # analysis, no outbox, no sink, rpcAnalytics/* requests go to the child like any other.
    analytics: bool = True
    batch: BatchSettings = field(default_factory=BatchSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)


def exit_status(returncode: int) -> int:
    """A shell's view of a child status: 128+N for death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when the proxy dies (Linux), or None
    where ``prctl`` is not available."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                      ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:  # the proxy died before prctl: die as it would have made us
            os.kill(os.getpid(), sigkill)

    return preexec


def spawn(command: list[str], stdin_fd: int, stdout_fd: int) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(command, stdin=stdin_fd, stdout=stdout_fd, stderr=None,
                                bufsize=0, process_group=0, preexec_fn=die_with_parent())
    except FileNotFoundError:
        raise ChildStartError(f"cannot start {command[0]!r}: command not found", 127) from None
    except PermissionError:
        raise ChildStartError(f"cannot start {command[0]!r}: permission denied", 126) from None
    except OSError as error:
        raise ChildStartError(f"cannot start {command[0]!r}: {error.strerror or error}",
                              126) from None


def _enlarge_pipe(fd: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


class StdioProxy:
    def __init__(self, config: ProxyConfig, *, client_in: int = 0, client_out: int = 1) -> None:
        self.config = config
        self.client_in = client_in
        self.client_out = client_out
        self.process: subprocess.Popen[bytes] | None = None
        self.first_signal: int | None = None
        self.signalled_at: float | None = None
        self._reserve = min(MAX_FLUSH_RESERVE_S, config.grace / 3)
        self._relay: RelayLoop | None = None
        self._session: TapSession | None = None
        self._delivery: Delivery | None = None  # None: analytics are off
        self._closer: threading.Thread | None = None  # closes delivery while the relay runs on
        self._budget_end: float | None = None  # analytics and delivery must be done by then
        self._drain_until: float | None = None  # the child exited: its output, until then

    # -- signals --------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Runs on the main thread between bytecodes: record and forward, nothing that locks.
        if self.first_signal is None:
            self.first_signal = signum
            self.signalled_at = time.monotonic()
        process = self.process
        if process is not None and process.returncode is None:
            # To the child's whole process group (it leads one): what it spawned gets the
            # signal too, as a terminal's Ctrl-C reaches every process of the foreground job.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signum)

    # -- run ------------------------------------------------------------------------------------

    def run(self) -> int:
        """Relay until the session ends; returns the exit status. Raises ChildStartError."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in FORWARDED_SIGNALS}
        previous_wakeup: int | None = None
        try:
            child_stdin_r, child_stdin_w = os.pipe()
            child_stdout_r, child_stdout_w = os.pipe()
            for fd in (child_stdin_w, child_stdout_r):
                _enlarge_pipe(fd)
            try:
                process = spawn(self.config.command, child_stdin_r, child_stdout_w)
            except ChildStartError:
                for fd in (child_stdin_r, child_stdin_w, child_stdout_r, child_stdout_w):
                    os.close(fd)
                raise
            self.process = process
            os.close(child_stdin_r)
            os.close(child_stdout_w)
            if self.first_signal is not None:  # arrived while we were spawning
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, self.first_signal)
            exit_fd = _pidfd(process.pid)
            if exit_fd is None:  # no pidfd: SIGCHLD wakes the loop (through the wakeup fd)
                previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *_: None)
            relay = self._start(process, child_stdin_w, child_stdout_r)
            if exit_fd is not None:
                relay.watch_child_exit(exit_fd)
            previous_wakeup = signal.set_wakeup_fd(relay.wake_w, warn_on_full_buffer=False)
            try:
                return self._run(relay)
            finally:
                relay.close()
        finally:
            if previous_wakeup is not None:
                signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start(self, process: subprocess.Popen[bytes], child_in: int,
               child_out: int) -> RelayLoop:
        config = self.config
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        delivery = None
        if config.analytics:
            batch = config.batch
            delivery = Delivery(state_dir=config.state_dir, sinks=config.sinks,
                                codex_home=config.codex_home,
                                batch_max_events=batch.max_events,
                                batch_max_bytes=batch.max_bytes, batch_linger_s=batch.linger_s,
                                retention_days=config.outbox.retention_days,
                                max_pending_events=config.outbox.max_pending_events)
            delivery.start()
        session = TapSession(
            transport="stdio", delivery=delivery, connection_id=0,
            recorder=config.recorder if config.analytics else None,
            max_backlog_bytes=config.max_backlog_bytes,
            info={"pid": os.getpid(), "child_pid": process.pid, "command": config.command[0]},
        )
        relay = RelayLoop(client_in=self.client_in, client_out=self.client_out,
                          child_in=child_in, child_out=child_out, session=session,
                          spin=config.spin,
                          stream_filter=None if config.analytics else PassThroughFilter())
        session.start(relay.reply, argv=config.argv or config.command)
        if not config.analytics:
            session.end()
        self._relay, self._session, self._delivery = relay, session, delivery
        return relay

    def _run(self, relay: RelayLoop) -> int:
        relay.run(self._tick, self._deadline)
        process, session, delivery = self.process, self._session, self._delivery
        assert process is not None and session is not None
        assert process.returncode is not None and self._budget_end is not None
        status = exit_status(process.returncode)
        budget_end = max(self._budget_end, time.monotonic() + 0.05)
        if self._closer is None:
            session.finish(budget_end - self._reserve / 2,
                           {"exit_code": status, "child_exited": True})
            if delivery is not None:
                delivery.close(max(budget_end - time.monotonic(), 0.05))
        else:  # analytics ended at the grace point; the closer is bounded by its timeout
            self._closer.join(MAX_FLUSH_RESERVE_S + 2.5)  # close() is bounded: a safety net
        return status

    # -- lifecycle, called by the loop on every wake-up that is not data --------------------

    def _tick(self) -> bool:
        """Whether the relay is over: the child exited and its output reached the client (or
        the time for that ran out)."""
        process = self.process
        assert process is not None
        now = time.monotonic()
        if process.returncode is None and process.poll() is None:
            if self.signalled_at is not None and self._closer is None and now >= (
                    self.signalled_at + self.config.grace - self._reserve):
                self._end_analytics(self.signalled_at + self.config.grace)
            return False
        if self._drain_until is None:
            if self._closer is not None:  # exited after the grace: analytics are done
                self._budget_end = now
                self._drain_until = now + LATE_EXIT_DRAIN_S
            else:
                self._budget_end = (self.signalled_at if self.signalled_at is not None
                                    else now) + self.config.grace
                self._drain_until = self._budget_end - self._reserve / 2
        relay = self._relay
        assert relay is not None and self._session is not None
        if relay.client_out_closed:
            return True
        if now < self._drain_until:
            return False
        if relay.answers_owed() and not self._session.ended:
            # Out of time with rpcAnalytics/* answers owed (a flush waiting for its sinks, a
            # request behind a long backlog): end analytics now, which answers every request
            # (analytics-ended where there was no answer yet), and put those out before EOF.
            self._session.end({"exit_code": exit_status(process.returncode),
                               "child_exited": True})
            relay.answer_and_close()
        return True

    def _deadline(self) -> float | None:
        """When ``_tick`` must run again even if nothing happens."""
        assert self.process is not None
        if self.process.returncode is not None:
            return self._drain_until
        if self.signalled_at is not None and self._closer is None:
            return self.signalled_at + self.config.grace - self._reserve
        return None

    def _end_analytics(self, budget_end: float) -> None:
        """The child outlived its share of the grace: end analytics now and close delivery in
        the background, by ``budget_end``, while the relay goes on."""
        session, delivery = self._session, self._delivery
        assert session is not None
        session.finish(budget_end - self._reserve / 2,
                       {"exit_code": None, "child_exited": False})
        timeout = max(budget_end - time.monotonic(), 0.05)
        self._closer = threading.Thread(
            target=delivery.close if delivery is not None else (lambda _timeout: None),
            args=(timeout,), name="codex-rpc-analytics-close", daemon=True)
        self._closer.start()


def run_stdio_proxy(config: ProxyConfig) -> int:
    return StdioProxy(config).run()
