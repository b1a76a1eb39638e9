"""The stdio proxy: ``codex-rpc-analytics proxy -- codex app-server``.

Threads: one pump per direction (pumps.py), one analytics worker (session.py), one that waits
for the child, delivery's own thread, and the main thread, which only handles signals and the
end of the session. Relay first, look second: the pumps never wait for analytics.

Lifecycle (docs/real-codex-peer.md §7.4: SDKs close stdin, send SIGTERM at once and SIGKILL
2 s later):

* Client EOF closes the child's stdin; the proxy then waits for the child as long as it takes
  (that is the child's business, as with a shell).
* SIGTERM, SIGINT and SIGHUP are forwarded to the child (which runs in its own process group,
  so a terminal's Ctrl-C reaches it once, through us). From the first signal the proxy waits
  for the child at most ``grace - reserve`` seconds (1.0 s of the default 1.5 s), then
  finishes analytics and closes delivery within what is left of ``grace``, and exits: with the
  child's status if it exited, else with 128+signal as if the signal had ended the proxy. A
  child that lingers is left to finish its own shutdown; it has its SIGTERM already.
* When the child exits by itself, analytics and delivery get ``grace`` seconds from then.
* The client-facing stdout is closed as soon as the child's stdout ends.
* Exit status: the child's, 128+N if a signal N ended it. A command that cannot be started
  is a one-line error and 127 (not found) or 126 (not executable), as a shell reports it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from ..delivery import Delivery, SinkSpec
from .proxy_lines import ClientOutput, ClientStreamFilter
from .pumps import pump_client_to_server, pump_server_to_client, write_all
from .recording import Recorder
from .session import DEFAULT_MAX_BACKLOG_BYTES, TapSession

DEFAULT_GRACE_S = 1.5
# Of the grace after a signal, at most this much is kept for analytics and delivery.
MAX_FLUSH_RESERVE_S = 0.5
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# A busy analytics thread may hold the GIL for the whole switch interval (5 ms by default)
# while a relay thread waits to write a chunk it already read; 0.5 ms bounds that wait.
SWITCH_INTERVAL_S = 0.0005
PIPE_SIZE = 1 << 20


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


def exit_status(returncode: int) -> int:
    """A shell's view of a child status: 128+N for death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def spawn(command: list[str], stdin_fd: int, stdout_fd: int) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(command, stdin=stdin_fd, stdout=stdout_fd, stderr=None,
                                bufsize=0, process_group=0)
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


class StdioProxy:
    def __init__(self, config: ProxyConfig, *, client_in: int = 0, client_out: int = 1) -> None:
        self.config = config
        self.client_in = client_in
        self.client_out = client_out
        self.process: subprocess.Popen[bytes] | None = None
        self.first_signal: int | None = None
        self.signalled_at: float | None = None
        self._child_exited = threading.Event()
        self._s2c_done = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)

    # -- signals --------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Runs on the main thread between bytecodes: record and forward, nothing that locks.
        if self.first_signal is None:
            self.first_signal = signum
            self.signalled_at = time.monotonic()
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(process.pid, signum)

    # -- run ------------------------------------------------------------------------------------

    def run(self) -> int:
        """Relay until the session ends; returns the exit status. Raises ChildStartError."""
        config = self.config
        previous = {sig: signal.signal(sig, self._on_signal) for sig in FORWARDED_SIGNALS}
        previous_wakeup = signal.set_wakeup_fd(self._wake_w)
        try:
            return self._run(config)
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _run(self, config: ProxyConfig) -> int:
        child_stdin_r, child_stdin_w = os.pipe()
        child_stdout_r, child_stdout_w = os.pipe()
        for fd in (child_stdin_w, child_stdout_r):
            _enlarge_pipe(fd)
        try:
            process = spawn(config.command, child_stdin_r, child_stdout_w)
        except ChildStartError:
            for fd in (child_stdin_r, child_stdin_w, child_stdout_r, child_stdout_w):
                os.close(fd)
            raise
        self.process = process
        os.close(child_stdin_r)
        os.close(child_stdout_w)
        if self.first_signal is not None:  # arrived while we were spawning
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, self.first_signal)

        sys.setswitchinterval(SWITCH_INTERVAL_S)
        delivery = Delivery(state_dir=config.state_dir, sinks=config.sinks,
                            codex_home=config.codex_home)
        delivery.start()
        session = TapSession(
            transport="stdio", delivery=delivery, connection_id=0, recorder=config.recorder,
            max_backlog_bytes=config.max_backlog_bytes,
            info={"pid": os.getpid(), "child_pid": process.pid, "command": config.command[0]},
        )
        output = ClientOutput(lambda data: write_all(self.client_out, data),
                              on_close=self._close_client_out)
        session.start(output.inject, argv=config.argv or config.command)

        threads = [
            threading.Thread(target=pump_client_to_server, name="relay-c2s", daemon=True,
                             args=(self.client_in, child_stdin_w, ClientStreamFilter(), session,
                                   lambda: None)),
            threading.Thread(target=pump_server_to_client, name="relay-s2c", daemon=True,
                             args=(child_stdout_r, output, session, self._s2c_done.set)),
            threading.Thread(target=self._wait_child, name="child-wait", daemon=True),
        ]
        for thread in threads:
            thread.start()

        self._wait_for_end(config.grace)
        now = time.monotonic()
        if process.returncode is not None:
            status = exit_status(process.returncode)
            budget_end = (self.signalled_at + config.grace if self.signalled_at is not None
                          else now + config.grace)
            # The child is gone: its stdout ends now unless a grandchild holds it open.
            self._s2c_done.wait(max(budget_end - time.monotonic() - MAX_FLUSH_RESERVE_S / 2,
                                    0.0))
        else:
            assert self.first_signal is not None and self.signalled_at is not None
            status = 128 + self.first_signal
            budget_end = self.signalled_at + config.grace
        budget_end = max(budget_end, time.monotonic() + 0.05)
        session.finish(budget_end, {"exit_code": status,
                                    "child_exited": process.returncode is not None})
        delivery.close(max(budget_end - time.monotonic(), 0.05))
        return status

    def _wait_child(self) -> None:
        assert self.process is not None
        self.process.wait()
        self._child_exited.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"c")

    def _wait_for_end(self, grace: float) -> None:
        """Until the child exits, or, after a signal, until the child's share of the grace."""
        reserve = min(MAX_FLUSH_RESERVE_S, grace / 3)
        while not self._child_exited.is_set():
            timeout = None
            if self.signalled_at is not None:
                timeout = self.signalled_at + grace - reserve - time.monotonic()
                if timeout <= 0:
                    return
            with contextlib.suppress(InterruptedError):
                select.select([self._wake_r], [], [], timeout)
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self._wake_r, 4096)

    def _close_client_out(self) -> None:
        """Close the client-facing stdout now (the client sees EOF) without freeing the fd
        number for reuse: /dev/null takes its place."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self.client_out)
        finally:
            os.close(devnull)


def run_stdio_proxy(config: ProxyConfig) -> int:
    return StdioProxy(config).run()
