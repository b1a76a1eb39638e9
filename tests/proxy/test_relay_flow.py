"""The single-threaded relay under load: both directions at once, back-pressure, no deadlock,
and the same flow control a client would get from the child itself."""

from __future__ import annotations

import fcntl
import os
import random
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.proxy.support import PYTHON, proxy, read_line

Spawn = Callable[[list[str]], subprocess.Popen[bytes]]


@pytest.fixture
def spawn() -> Iterator[Callable[[list[str]], subprocess.Popen[bytes]]]:
    """Starts processes with pipes; whatever still runs at the end of the test is killed
    (a deadlocked proxy must fail the test, not outlive it)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(command: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _payload(size: int, seed: int) -> bytes:
    """Lines of every kind up to ``size`` bytes: JSON, binary, invalid UTF-8, multi-MB."""
    rng = random.Random(seed)
    parts: list[bytes] = []
    total = 0
    while total < size:
        kind = rng.randrange(5)
        if kind == 0:
            line = b'{"method":"item/agentMessage/delta","params":{"delta":"' + (
                "a\u2028b" * rng.randrange(1, 50)).encode() + b'"}}\n'
        elif kind == 1:
            line = rng.randbytes(rng.randrange(1, 5000)).replace(b"\n", b"") + b"\n"
        elif kind == 2:
            line = b"\xff\xfe\x80 not utf-8\n"
        elif kind == 3:
            line = b'{"id":1,"result":{"data":"' + b"Z" * rng.randrange(1, 3 << 20) + b'"}}\n'
        else:
            # longer than the 64 KiB a partial line starting with '{' may be held back
            line = b'{"id":2,"method":"x","params":"' + b"x" * rng.randrange(70000) + b'"}\n'
        parts.append(line)
        total += len(line)
    return b"".join(parts) + b"no final newline"


def test_many_megabytes_both_ways_at_once_through_cat(tmp_path: Path, spawn: Spawn) -> None:
    """What a real client does (SDKs read on their own thread or task): it writes without
    waiting for answers while it reads, here with pauses, so every pipe on the way fills up
    now and then. cat echoes, so both directions are full at once: the one relay thread
    must never block writing to one side while the other waits for it."""
    data = _payload(48 << 20, seed=1)
    process = spawn(proxy(tmp_path / "s", ["cat"]))
    assert process.stdin is not None and process.stdout is not None

    def write() -> None:
        assert process.stdin is not None
        process.stdin.write(data)
        process.stdin.close()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    received = bytearray()
    fd = process.stdout.fileno()
    deadline = time.monotonic() + 30
    pauses = 0
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0 and select.select([fd], [], [], remaining)[0], "relay deadlocked"
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        received += chunk
        if len(received) >> 22 > pauses:  # a slow reader: a pause every 4 MiB
            pauses += 1
            time.sleep(0.05)
    writer.join(10)
    assert process.wait(10) == 0
    assert len(received) == len(data)
    assert received == data


def _pipe_max() -> int:
    try:
        return int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except OSError:
        return 0


@pytest.mark.skipif(_pipe_max() < 1 << 20, reason="the proxy cannot enlarge its child's pipes")
def test_a_client_that_writes_everything_before_reading(tmp_path: Path, spawn: Spawn) -> None:
    """1 MiB written before a single byte is read: with every pipe on the way full (and the
    client's stdout pipe too), the relay stops reading where it cannot write and resumes when
    it can. (Through ``cat`` alone, about 256 KiB fit before such a client blocks; the proxy's
    own pipes to its child hold 1 MiB each, so it never blocks such a client earlier.)"""
    data = _payload(1 << 20, seed=2)[: 1 << 20]
    process = spawn(proxy(tmp_path / "s", ["cat"]))
    assert process.stdin is not None and process.stdout is not None
    done = threading.Event()

    def write() -> None:
        assert process.stdin is not None
        process.stdin.write(data)
        process.stdin.close()
        done.set()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    assert done.wait(20), "the client's writes never completed: the relay deadlocked"
    assert process.stdout.read() == data
    assert process.wait(10) == 0


# The child keeps reading its stdin while its stdout is blocked (as codex does: separate
# tasks). It writes 8 MiB to stdout from a thread, and records how much stdin it has read.
READS_WHILE_BLOCKED = """
import os, sys, threading
count_path = sys.argv[1]
def flood():
    block = b"y" * 65535 + b"\\n"
    for _ in range(128):
        os.write(1, block)
writer = threading.Thread(target=flood)
writer.start()
total = 0
while chunk := os.read(0, 1 << 16):
    total += len(chunk)
with open(count_path + ".tmp", "w") as f:
    f.write(str(total))
os.rename(count_path + ".tmp", count_path)
writer.join()
"""


def test_client_to_server_keeps_flowing_while_the_client_does_not_read(
    tmp_path: Path, spawn: Spawn,
) -> None:
    """Transparency of flow control: while the client reads nothing, the child's stdout is
    blocked, but the child still gets everything the client writes, as it would without the
    proxy. (A relay that blocked writing to the client would stop relaying the other way.)"""
    count = tmp_path / "count"
    child = [PYTHON, "-c", READS_WHILE_BLOCKED, str(count)]
    process = spawn(proxy(tmp_path / "s", child))
    assert process.stdin is not None and process.stdout is not None
    data = b"z" * 65535 + b"\n"
    sent = 32 * len(data)  # 2 MiB, far more than any pipe on the way holds

    def write() -> None:
        assert process.stdin is not None
        for _ in range(32):
            process.stdin.write(data)
        process.stdin.close()

    threading.Thread(target=write, daemon=True).start()
    deadline = time.monotonic() + 20
    while not count.exists():
        assert time.monotonic() < deadline, "the child never got the client's bytes"
        time.sleep(0.02)
    assert int(count.read_text()) == sent
    received = process.stdout.read()
    assert len(received) == 128 * 65536 and set(received) == {ord("y"), ord("\n")}
    assert process.wait(10) == 0


def test_the_client_sees_a_broken_pipe_when_the_child_stops_reading(
    tmp_path: Path, spawn: Spawn,
) -> None:
    """A child that closes its stdin: the client's writes fail as they would against the
    child itself, instead of filling a pipe nobody reads."""
    child = [PYTHON, "-c", "import os, time; os.close(0); print('closed', flush=True); "
             "time.sleep(30)"]
    process = spawn(proxy(tmp_path / "s", child))
    assert process.stdin is not None and process.stdout is not None
    assert read_line(process.stdout) == b"closed\n"
    deadline = time.monotonic() + 10
    with pytest.raises(BrokenPipeError):
        while time.monotonic() < deadline:
            os.write(process.stdin.fileno(), b'{"method":"x"}\n')
            time.sleep(0.01)
    assert process.poll() is None  # the proxy itself goes on until its child exits


SPEWS_AND_IGNORES_SIGTERM = """
import os, signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
line = b'{"method":"item/agentMessage/delta","params":{"delta":"' + b"d" * 4000 + b'"}}\\n'
os.write(1, b"ready\\n")
while True:
    os.write(1, line)
"""


def test_the_grace_holds_while_the_relay_never_idles(tmp_path: Path, spawn: Spawn) -> None:
    """A child that ignores SIGTERM and writes without pause (the relay is rarely idle):
    analytics still end at the grace (the recording gets its last row), the relay goes on,
    the child's status wins."""
    recording = tmp_path / "r.rpc.jsonl"
    process = spawn(proxy(tmp_path / "s", [PYTHON, "-c", SPEWS_AND_IGNORES_SIGTERM],
                          "--grace", "0.6", "--record", str(recording)))
    assert process.stdout is not None
    assert read_line(process.stdout) == b"ready\n"
    fd = process.stdout.fileno()
    received = [0]

    def drain() -> None:
        while chunk := os.read(fd, 1 << 16):
            received[0] += len(chunk)

    threading.Thread(target=drain, daemon=True).start()
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    signalled = time.monotonic()

    def ended() -> bool:
        rows = recording.read_bytes().splitlines() if recording.exists() else []
        return bool(rows) and b'"dir":"meta"' in rows[-1] and b"child_exited" in rows[-1]

    # The child ignores SIGTERM and never exits by itself: analytics ending at all, while it
    # runs, is analytics ending at the grace (the bound only turns a hang into a failure).
    while not ended():
        assert time.monotonic() - signalled < 30, "analytics did not end at the grace"
        time.sleep(0.01)  # polling a condition (the recording), not synchronising
    before = received[0]
    time.sleep(0.3)
    assert received[0] > before and process.poll() is None  # still relaying
    child = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
    os.kill(child, signal.SIGKILL)
    assert process.wait(10) == 128 + signal.SIGKILL


class SocketStdio:
    """The proxy with Unix sockets for stdin and stdout, as Node (libuv) gives a child piped
    stdio: ``client`` writes the proxy's stdin and reads its stdout; ``proxy_ends`` are the
    proxy's ends, the same open file descriptions the proxy has as its fd 0 and 1."""

    def __init__(self, command: list[str]) -> None:
        self.stdin_client, stdin_proxy = socket.socketpair()
        self.stdout_client, stdout_proxy = socket.socketpair()
        self.proxy_ends = [stdin_proxy, stdout_proxy]
        self.flags_before = [fcntl.fcntl(end.fileno(), fcntl.F_GETFL) for end in self.proxy_ends]
        self.process = subprocess.Popen(command, stdin=stdin_proxy.fileno(),
                                        stdout=stdout_proxy.fileno(), stderr=subprocess.PIPE)

    def flags(self) -> list[int]:
        return [fcntl.fcntl(end.fileno(), fcntl.F_GETFL) for end in self.proxy_ends]

    def let_go(self) -> None:
        """Close our copies of the proxy's ends (else its EOF would never reach us)."""
        for end in self.proxy_ends:
            end.close()

    def write_all_then_close(self, data: bytes) -> threading.Thread:
        def write() -> None:
            self.stdin_client.sendall(data)
            self.stdin_client.shutdown(socket.SHUT_WR)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        return writer

    def read_all(self) -> bytes:
        received = bytearray()
        self.stdout_client.settimeout(30)  # a deadlocked relay fails the test, not hangs it
        while chunk := self.stdout_client.recv(1 << 16):
            received += chunk
        return bytes(received)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for sock in (self.stdin_client, self.stdout_client, *self.proxy_ends):
            sock.close()


def test_unix_sockets_as_stdio_relay_byte_for_byte_and_keep_their_flags(tmp_path: Path) -> None:
    data = _payload(4 << 20, seed=5)
    stdio = SocketStdio(proxy(tmp_path / "s", ["cat"]))
    try:
        stdio.write_all_then_close(data)
        first = stdio.stdout_client.recv(1)  # the proxy is relaying now
        assert stdio.flags() == stdio.flags_before  # O_NONBLOCK untouched: they are shared
        stdio.let_go()
        assert first + stdio.read_all() == data
        assert stdio.process.wait(10) == 0
    finally:
        stdio.stop()


def test_over_unix_sockets_client_to_server_keeps_flowing_while_the_client_does_not_read(
    tmp_path: Path,
) -> None:
    """As with pipes (above): a relay that blocked writing to the client's socket would stop
    reading the client, and the client's writes would never complete."""
    count = tmp_path / "count"
    stdio = SocketStdio(proxy(tmp_path / "s", [PYTHON, "-c", READS_WHILE_BLOCKED, str(count)]))
    try:
        data = b"z" * 65535 + b"\n"
        writer = stdio.write_all_then_close(data * 32)  # 2 MiB, more than the sockets hold
        writer.join(20)
        assert not writer.is_alive(), "the client's writes never completed: the relay blocked"
        deadline = time.monotonic() + 20
        while not count.exists():
            assert time.monotonic() < deadline, "the child never got the client's bytes"
            time.sleep(0.02)
        assert int(count.read_text()) == 32 * len(data)
        assert stdio.flags() == stdio.flags_before
        stdio.let_go()
        received = stdio.read_all()
        assert len(received) == 128 * 65536 and set(received) == {ord("y"), ord("\n")}
        assert stdio.process.wait(10) == 0
    finally:
        stdio.stop()
