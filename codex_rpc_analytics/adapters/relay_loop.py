"""The stdio proxy's relay: one thread, one ``select.poll`` loop, relay first.

Sources: the client's stdin and the child's stdout. Destinations: the child's stdin and the
client's stdout. A chunk (``os.read`` of up to 64 KiB: larger reads make glibc map and unmap a
fresh buffer each time) is written to its destination as soon as it is read; nothing is
assembled here, so a multi-MB line moves in 64 KiB pieces and no line-length limit exists.

Deadlock and back-pressure. One thread must never block writing to the child while the child
blocks writing its stdout to us. Our ends of the child's pipes (we made them) are non-blocking;
what a destination does not take at once stays in that destination's pending buffer, and
while it holds bytes the loop waits for ``POLLOUT`` on the destination and stops reading that
direction's source. So memory stays bounded (one chunk per direction plus the proxy's own
answers) and the other direction keeps flowing.

The client's stdout is not ours alone: its open file description may be shared (with fd 2,
with a shell). Setting ``O_NONBLOCK`` on it could make the child's inherited stderr (or
whoever else shares it) fail with ``EAGAIN``. When it is a pipe or FIFO (what IDEs and SDKs
give us), the loop opens ``/proc/self/fd/1`` instead: a *new* description of the same pipe,
non-blocking, private to us, and nothing to restore at exit. That keeps the relay transparent:
codex keeps reading its stdin while its stdout is blocked, and so does the proxy, so a client
that writes a lot before it reads sees the same flow control as with codex itself. A Unix
socket cannot be reopened that way, and it is what Node (libuv) gives a child for piped stdio,
so VS Code's extensions hand the proxy sockets: the loop writes to one with
``send(MSG_DONTWAIT)`` and reads one with ``recv(MSG_DONTWAIT)``, non-blocking per call, and
never sets ``O_NONBLOCK`` on a description it shares. Where neither is possible (a terminal, a
file, no ``/proc``) the write to the client blocks, which is what a terminal or file costs
anyway.

Analytics runs on this thread too, but only when the relay is idle: each relayed chunk is
queued for the ``TapSession`` (an append); once ``poll(0)`` reports nothing ready, the session
analyses a slice (about ``ANALYSIS_SLICE_S``) and the loop checks readiness again before the
next slice; with nothing left to analyse it blocks in ``poll``. A ready fd always goes first.
While delivery has thousands of events still to commit, the check before a slice waits a
millisecond for the fds instead of none (``TapSession.delivery_behind``), so that delivery's
thread gets the GIL and memory does not fill with events.

Batches. Work done right after a wake-up runs on cold CPU caches: on the 2-core dev VM the
same line costs ~2 µs to analyse in a busy loop and ~55 µs when it is the first thing done
after a 10 ms sleep. A paced session (a message every few ms) would pay that for every
message, so relayed bytes wait and are analysed together: when the loop is about to sleep
and they have waited ``ANALYSIS_BEFORE_SLEEP_S`` (no wake-up of its own), when they have
waited ``ANALYSIS_DELAY_S`` (a timer, for a session that went quiet), and at once when
``ANALYSIS_BATCH_BYTES`` have gathered (a busy session: analysis runs whenever the relay
idles) or an ``rpcAnalytics/*`` request waits behind them (it is answered in relay order).
The session hands a batch's events to delivery in one go (session.py).

A flood. Relay first, always: analysis never takes the thread while an fd is ready, however
far behind it is. Past a 16th of its bound the session takes the notifications analytics never
reads out of each chunk as it is queued (``TapSession.flood_bytes``, byte-level, after the
chunk was written) and packs the rest, so what waits is the lines analytics needs, small
enough for the bound to hold those of a long flood; past the whole bound chunks are relayed
and dropped unanalysed (counted). A relay that never idles therefore loses analytics, never
speed; a real flood (a server writing as fast as it can) leaves the relay idle whenever the
server has not written the next chunk yet, and that is when the kept lines are analysed.

Spinning. After it relayed something, the loop keeps calling ``poll(0)`` for ``spin`` seconds
(50 µs by default) before it blocks. A relay is a third process in the chain: every message
through it costs two more wake-ups than without it, and on a VM a wake-up of a sleeping
process is tens of µs (the host has to resume a halted vCPU). Not sleeping right after a
message removes the proxy's own wake-up when the answer comes back quickly (measured on the
2-core dev VM: round trip p50 through ``proxy -- cat`` from 70-85 µs down to 34 µs). The spin
is per direction and learns: after relaying one way, the loop spins only if, the last time
it relayed that way, more data came within the spin. A request gets its quick answer caught;
an answer followed by the client's silence (a paced session) costs no spin, and neither does
a child slower to answer than the spin (a loaded machine, where spinning would only take a
CPU from the processes the relay waits for).
``spin = 0`` blocks at once.

Other wake-ups go through one self-pipe in the poll set: signals (``signal.set_wakeup_fd``)
and answers to ``rpcAnalytics/*`` requests, which are made on pylsp's executor threads and
injected here at the next line boundary of the server's output. The child's exit is a
``pidfd`` in the poll set where the kernel has them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import socket
import stat
import time
from collections import deque
from collections.abc import Callable

from .proxy_lines import MARKER, ClientOutput, ClientStreamFilter
from .session import DELIVERY_WAIT_S, TapSession

READ_SIZE = 1 << 16
NO_LINES: list[bytes] = []
# Analysis gives the relay a chance (poll(0)) at least this often.
ANALYSIS_SLICE_S = 50e-6
# Relayed bytes are analysed in batches (see "Batches" in the module docstring): when the loop
# is about to sleep and they have waited this long, or once they have waited this long, or at
# once when this many have gathered or an rpcAnalytics/* request waits behind them.
ANALYSIS_BEFORE_SLEEP_S = 0.2
ANALYSIS_DELAY_S = 0.4
ANALYSIS_BATCH_BYTES = 256 * 1024
DELIVERY_WAIT_MS = max(round(DELIVERY_WAIT_S * 1000), 1)  # poll's unit
# After relaying, keep polling without sleeping for this long before blocking (see SPIN above).
DEFAULT_SPIN_S = 50e-6

POLLIN = select.POLLIN
POLLOUT = select.POLLOUT
# A socket is read and written without blocking per call, never by its shared O_NONBLOCK flag;
# a peer gone is EPIPE, not SIGPIPE.
DONT_WAIT = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL


def private_nonblocking_writer(fd: int) -> int | None:
    """A non-blocking descriptor of the pipe/FIFO behind ``fd`` that shares no flags with it,
    or None when ``fd`` is not a pipe or the platform cannot reopen it (no /proc)."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        return os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None


def socket_of(fd: int) -> socket.socket | None:
    """A socket object on a duplicate of ``fd`` when ``fd`` is a socket (the same open file
    description, flags untouched), else None."""
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
        duplicate = os.dup(fd)
    except OSError:
        return None
    try:
        return socket.socket(fileno=duplicate)
    except OSError:
        os.close(duplicate)
        return None


def _close_in_place(fd: int) -> None:
    """Close what ``fd`` refers to without freeing the number for reuse: /dev/null takes its
    place (the peer sees EOF, or EPIPE on its next write)."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


class RelayLoop:
    """Relays until ``tick`` says stop. ``tick()`` is called on every wake-up that is not data
    (signal, child exit, end of the child's output) and once ``deadline()`` has passed;
    ``deadline()`` is a ``time.monotonic()`` value or None, asked again after each tick."""

    def __init__(
        self,
        *,
        client_in: int,
        client_out: int,
        child_in: int,
        child_out: int,
        session: TapSession,
        stream_filter: ClientStreamFilter | None = None,
        spin: float = DEFAULT_SPIN_S,
    ) -> None:
        self.client_in = client_in
        self.client_out = client_out
        self.child_in = child_in
        self.child_out = child_out
        self.session = session
        self.stream_filter = stream_filter or ClientStreamFilter()
        self.spin = spin
        self._poll = select.poll()
        self._masks: dict[int, int] = {}
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w, child_in, child_out):
            os.set_blocking(fd, False)
        self._answers: deque[bytes] = deque()
        self._answers_received = 0
        # Where client-bound bytes are written: a private non-blocking descriptor if possible,
        # else send(MSG_DONTWAIT) on a socket, else a (blocking) write.
        self._out_private = private_nonblocking_writer(client_out)
        self._out_fd = self._out_private if self._out_private is not None else client_out
        self._out_socket = None if self._out_private is not None else socket_of(client_out)
        self._in_socket = socket_of(client_in)
        self._write_out: Callable[[bytes | memoryview], int] = (
            functools.partial(os.write, self._out_fd) if self._out_socket is None
            else self._send_out)
        self._out_pending: deque[memoryview] = deque()
        self._out_closing = False
        self._in_pending: memoryview | None = None
        self.output = ClientOutput(self._client_write, on_close=self._close_client_out)
        self.c2s_done = False  # the client's input ended (or the child stopped reading it)
        self.s2c_done = False  # the child's output ended
        self.client_out_closed = False
        self._close_deferred = False  # the child's output ended; answers are still owed
        self._child_in_open = True
        self._child_exit_fd: int | None = None

    # -- set-up ---------------------------------------------------------------------------------

    def watch_child_exit(self, fd: int) -> None:
        """A pidfd (readable once the child exited): ``tick`` is called then."""
        self._child_exit_fd = fd
        self._watch(fd, POLLIN)

    def reply(self, answer: bytes) -> None:
        """An answer line for the client; any thread. Injected by the loop at the next line
        boundary of the server's output."""
        self._answers.append(answer)
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            os.write(self.wake_w, b"a")

    def close(self) -> None:
        for fd in (self.wake_r, self.wake_w, self._out_private, self._child_exit_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._out_private = self._child_exit_fd = None
        for sock in (self._in_socket, self._out_socket):
            if sock is not None:
                sock.close()
        self._in_socket = self._out_socket = None

    # -- the loop -------------------------------------------------------------------------------

    def run(self, tick: Callable[[], bool], deadline: Callable[[], float | None]) -> None:
        client_in, child_in = self.client_in, self.child_in
        child_out, wake_r = self.child_out, self.wake_r
        self._watch(client_in, POLLIN)
        self._watch(child_out, POLLIN)
        self._watch(wake_r, POLLIN)
        poll = self._poll.poll
        # Each chunk is stamped with time.time() after it was written: the analysis may run
        # much later (it waits for an idle relay), and the events need the relay's time.
        read, write, now = os.read, os.write, time.time
        read_client = read
        if self._in_socket is not None:
            recv = self._in_socket.recv

            def read_client(_fd: int, size: int) -> bytes:
                return recv(size, DONT_WAIT)
        session = self.session
        observe, extension_request, process = (session.observe, session.extension_request,
                                               session.process)
        delivery_behind = session.delivery_behind
        output = self.output
        stream_filter = self.stream_filter
        feed, server_chunk = stream_filter.feed, output.server_chunk
        plain = stream_filter.at_line_start  # nothing held back: the fast path may be taken
        clock = time.monotonic
        busy = False  # the session has queued work
        urgent = False  # an rpcAnalytics/* request is queued: analyse whenever idle
        queued_at = 0.0  # when the oldest queued work was relayed
        # Spinning (see the module docstring), per direction: whether data came within the
        # spin after the last relay in that direction, i.e. spinning would have caught it.
        spin = self.spin
        catch = spin
        spin_after_c2s = spin_after_s2c = spin > 0.0
        spin_until = 0.0
        last_relay_at = 0.0
        last_was_c2s = True
        if tick():
            return
        due = deadline()  # the lifecycle's; checked even when the relay never idles
        while True:
            # What to wait for. Computed with as few calls as possible: after a sleep every
            # instruction runs on cold caches (see "Batches").
            if busy:
                instant = clock()
                waited = instant - queued_at
                if (urgent or waited >= ANALYSIS_DELAY_S
                        or session.backlog_bytes >= ANALYSIS_BATCH_BYTES
                        or (waited >= ANALYSIS_BEFORE_SLEEP_S and instant >= spin_until)):
                    # Delivery's committer needs the GIL too: when it is far behind, wait
                    # for the fds a little (a ready one ends the wait) before the next slice.
                    ready = poll(DELIVERY_WAIT_MS if delivery_behind() else 0)
                    if not ready:
                        busy = process(ANALYSIS_SLICE_S)
                        urgent = urgent and busy
                        if due is not None and clock() >= due:  # a long backlog, a timer
                            if tick():
                                return
                            due = deadline()
                        continue
                elif instant < spin_until:
                    ready = poll(0)
                    if not ready:
                        continue
                else:
                    wake = queued_at + ANALYSIS_DELAY_S
                    if due is not None and due < wake:
                        wake = due
                    ready = poll(max(int((wake - instant) * 1000.0) + 1, 0))
                    if not ready:
                        if due is not None and clock() >= due:
                            if tick():
                                return
                            due = deadline()
                        continue
            elif spin_until and clock() < spin_until:
                ready = poll(0)
                if not ready:
                    continue
            else:
                until = session.idle_due()
                if due is not None and (until is None or due < until):
                    until = due
                ready = poll(-1 if until is None else
                             max(int((until - clock()) * 1000.0) + 1, 0))
                if not ready:
                    busy = process(ANALYSIS_SLICE_S)  # held events, the recording's flush
                    if busy:
                        queued_at = clock()
                    if due is not None and clock() >= due:
                        if tick():
                            return
                        due = deadline()
                    continue
            moment = clock()
            if due is not None and moment >= due:
                if tick():
                    return
                due = deadline()
            relayed = False
            for fd, _events in ready:
                if fd == child_out:  # -- server → client
                    try:
                        data = read(child_out, READ_SIZE)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data:
                        server_chunk(data)
                        observe("s2c", data, now())
                        if not busy:
                            busy, queued_at = True, moment
                        if not relayed:
                            relayed = True
                            if last_was_c2s:
                                spin_after_c2s = moment - last_relay_at < catch
                            else:
                                spin_after_s2c = moment - last_relay_at < catch
                        last_was_c2s = False
                        if output.broken:  # the client's stdout is gone (EPIPE)
                            self._client_gone()
                    else:
                        self._child_output_ended()
                        if tick():
                            return
                        due = deadline()
                elif fd == client_in:  # -- client → server
                    try:
                        data = read_client(client_in, READ_SIZE)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if plain and data and data[-1] == 10 and MARKER not in data:
                        forward, requests = data, NO_LINES  # whole lines, no rpcAnalytics/
                    else:
                        forward, requests = feed(data) if data else stream_filter.finish()
                        plain = stream_filter.at_line_start
                    if forward:
                        try:
                            written = write(child_in, forward)
                        except BlockingIOError:
                            written = 0
                        except OSError:
                            written = -1
                        if written == len(forward):
                            observe("c2s", forward, now())
                        elif written >= 0:
                            self._child_in_blocked(forward, written)
                            observe("c2s", forward, now())
                        else:
                            self._child_stopped_reading()
                        if not busy:
                            busy, queued_at = True, moment
                        if not relayed:
                            relayed = True
                            if last_was_c2s:
                                spin_after_c2s = moment - last_relay_at < catch
                            else:
                                spin_after_s2c = moment - last_relay_at < catch
                        last_was_c2s = True
                    for line in requests:
                        extension_request(line, now())
                        busy = urgent = True
                    if not data:
                        self._client_input_ended()
                elif fd == wake_r:
                    self._woken()
                    if self._close_deferred and not self.answers_owed():
                        self._close_deferred = False
                        output.close()
                    if tick():
                        return
                    due = deadline()
                    if not busy and session.pending:
                        busy, queued_at = True, moment
                elif fd == self._out_fd:
                    self._client_out_writable()
                    if self.client_out_closed:
                        if tick():
                            return
                        due = deadline()
                elif fd == child_in:
                    self._child_in_writable()
                elif fd == self._child_exit_fd:
                    self._unwatch(fd)
                    if tick():
                        return
                    due = deadline()
            if relayed:
                last_relay_at = moment
                if spin_after_c2s if last_was_c2s else spin_after_s2c:
                    spin_until = moment + spin

    # -- rare paths -----------------------------------------------------------------------------

    def _watch(self, fd: int, mask: int) -> None:
        if self._masks.get(fd) != mask:
            self._poll.register(fd, mask)
            self._masks[fd] = mask

    def _unwatch(self, fd: int) -> None:
        if self._masks.pop(fd, None) is not None:
            self._poll.unregister(fd)

    def _woken(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.wake_r, 4096):
                pass
        answers, inject = self._answers, self.output.inject
        while answers:
            inject(answers.popleft())
            self._answers_received += 1

    def answers_owed(self) -> bool:
        """Whether an rpcAnalytics/* request the client sent still waits for its answer (once
        the session ended, every one has been handed to ``reply``: session.end)."""
        return self.session.answers_expected > self._answers_received

    def answer_and_close(self) -> None:
        """The time to drain ran out: put out the answers the session has handed over (end it
        first, so that there are all of them) and close the client's output."""
        self._woken()
        self._close_deferred = False
        self.output.close()

    # client → server

    def _child_in_blocked(self, data: bytes, written: int) -> None:
        """The child's stdin took only part of a chunk: stop reading the client until it
        takes the rest."""
        self._in_pending = memoryview(data)[written:]
        self._unwatch(self.client_in)
        self._watch(self.child_in, POLLOUT)

    def _child_in_writable(self) -> None:
        pending = self._in_pending
        if pending is None:
            self._unwatch(self.child_in)
            return
        try:
            written = os.write(self.child_in, pending)
        except BlockingIOError:
            return
        except OSError:
            self._child_stopped_reading()
            return
        if written < len(pending):
            self._in_pending = pending[written:]
            return
        self._in_pending = None
        self._unwatch(self.child_in)
        if self.c2s_done:
            self._close_child_in()
        else:
            self._watch(self.client_in, POLLIN)

    def _client_input_ended(self) -> None:
        """Client EOF: the child's stdin is closed once it has taken every byte."""
        self.c2s_done = True
        self._unwatch(self.client_in)
        if self._in_pending is None:
            self._close_child_in()

    def _child_stopped_reading(self) -> None:
        """The child closed its stdin (or died): nothing more can be delivered. Our stdin is
        closed too, so the client's next write fails as it would have against the child."""
        self._in_pending = None
        self._close_child_in()
        if not self.c2s_done:
            self.c2s_done = True
            self._unwatch(self.client_in)
            if self._in_socket is not None:  # our duplicate would keep the socket open
                self._in_socket.close()
                self._in_socket = None
            _close_in_place(self.client_in)

    def _close_child_in(self) -> None:
        if self._child_in_open:
            self._child_in_open = False
            self._unwatch(self.child_in)
            with contextlib.suppress(OSError):
                os.close(self.child_in)

    # server → client

    def _send_out(self, data: bytes | memoryview) -> int:
        assert self._out_socket is not None
        return self._out_socket.send(data, DONT_WAIT)

    def _client_write(self, data: bytes) -> None:
        """``ClientOutput``'s writer: the whole chunk is taken; what the client cannot take yet
        waits, and the child's output is not read meanwhile. Raises OSError: client gone."""
        pending = self._out_pending
        if pending:
            pending.append(memoryview(data))
            return
        try:
            written = self._write_out(data)
        except BlockingIOError:
            written = 0
        if written < len(data):
            pending.append(memoryview(data)[written:])
            self._unwatch(self.child_out)
            self._watch(self._out_fd, POLLOUT)

    def _client_out_writable(self) -> None:
        pending = self._out_pending
        while pending:
            head = pending[0]
            try:
                written = self._write_out(head)
            except BlockingIOError:
                return
            except OSError:
                pending.clear()
                self.output.fail()
                self._client_gone()
                return
            if written < len(head):
                pending[0] = head[written:]
                return
            pending.popleft()
        self._unwatch(self._out_fd)
        if self._out_closing:
            self._really_close_client_out()
        elif not self.s2c_done:
            self._watch(self.child_out, POLLIN)

    def _child_output_ended(self) -> None:
        self.s2c_done = True
        self._unwatch(self.child_out)
        with contextlib.suppress(OSError):
            os.close(self.child_out)
        if self.answers_owed() and not self.output.broken and self.output.at_boundary:
            # A client that wrote rpcAnalytics/* requests and closed its stdin still gets
            # every answer before EOF (bounded by the proxy's drain time). Not when the output
            # ended inside a line: no answer could be put out, EOF comes at once.
            self._close_deferred = True
            return
        self.output.close()  # → _close_client_out once the answers at the boundary are out

    def _client_gone(self) -> None:
        """The client's stdout broke: stop reading the child's stdout and close it, so the
        child gets EPIPE (or SIGPIPE) on its next write, as it would writing to the client
        directly. Without that, the proxy would drain a child like `yes` forever."""
        if not self.s2c_done:
            self._close_deferred = False
            self._child_output_ended()

    def _close_client_out(self) -> None:
        """The client sees EOF as soon as everything written so far has reached it."""
        if self._out_pending:
            self._out_closing = True
        else:
            self._really_close_client_out()

    def _really_close_client_out(self) -> None:
        if self.client_out_closed:
            return
        self.client_out_closed = True
        self._unwatch(self._out_fd)
        if self._out_private is not None:
            with contextlib.suppress(OSError):
                os.close(self._out_private)
            self._out_private = None
        if self._out_socket is not None:  # our duplicate would keep the socket open
            self._out_socket.close()
            self._out_socket = None
        _close_in_place(self.client_out)
