"""Property: whatever bytes flow either way, however they are chunked and whichever side stops
early, the proxy (a real subprocess, analytics on) relays every byte exactly and exits with
its child's status.

Hypothesis generates both streams (random binary with NULs and invalid UTF-8, JSON-looking
lines, empty lines, lines of up to 3 MB, a last line with or without its newline), how the
client chunks its writes, and what the child does: read everything then answer, answer then
read, answer while reading, close its stdout early and keep reading, or stop reading early and
exit; it exits with a chosen status or dies of a signal. The child records what it received.
Each example is one proxy run; the number of examples is bounded so the test takes seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.proxy.support import PYTHON, proxy

CHILD = r"""
import json, os, signal, sys, threading
spec = json.load(open(sys.argv[1]))
out, inp = sys.stdout.buffer, sys.stdin.buffer
data = open(spec["output"], "rb").read()
received = bytearray()

def read_all(limit=None):
    while limit is None or len(received) < limit:
        chunk = inp.read1(65536 if limit is None else min(65536, limit - len(received)))
        if not chunk:
            break
        received.extend(chunk)

def write_all():
    out.write(data)
    out.flush()

mode = spec["mode"]
if mode == "read_then_write":
    read_all(); write_all()
elif mode == "write_then_read":
    write_all(); read_all()
elif mode == "concurrent":
    writer = threading.Thread(target=write_all); writer.start(); read_all(); writer.join()
elif mode == "close_stdout_early":
    write_all(); out.close(); os.close(1); sys.stdout = open(os.devnull, "w"); read_all()
elif mode == "stop_reading":
    read_all(spec["read_limit"]); write_all()
open(spec["received"], "wb").write(bytes(received))
if spec["status"] < 0:
    os.kill(os.getpid(), -spec["status"])
sys.exit(spec["status"])
"""

MODES = ["read_then_write", "write_then_read", "concurrent", "close_stdout_early",
         "stop_reading"]


def _huge(size: int, byte: int) -> bytes:
    return bytes([byte]) * size


line = st.one_of(
    st.binary(max_size=300),  # NULs, invalid UTF-8, stray \r, anything but a newline
    st.builds(lambda v: json.dumps(v).encode(),
              st.dictionaries(st.sampled_from(["id", "method", "params", "result"]),
                              st.integers() | st.text(max_size=20), max_size=4)),
    st.just(b""),
    st.builds(_huge, st.integers(70_000, 3_000_000), st.sampled_from([0x41, 0x00, 0xFF, 0x7B])),
).map(lambda b: b.replace(b"\n", b" "))

stream = st.builds(
    lambda lines, newline: b"\n".join(lines) + (b"\n" if newline and lines else b""),
    st.lists(line, max_size=8), st.booleans(),
).filter(lambda data: len(data) < 4_000_000 and b"rpcAnalytics/" not in data)


@settings(max_examples=18, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sent=stream, answer=stream, mode=st.sampled_from(MODES),
       chunks=st.lists(st.integers(1, 200_000), min_size=1, max_size=6),
       status=st.sampled_from([0, 1, 3, 42, -signal.SIGKILL, -signal.SIGTERM]),
       read_limit=st.integers(0, 5000))
def test_every_byte_both_ways_and_the_childs_status(
    sent: bytes, answer: bytes, mode: str, chunks: list[int], status: int, read_limit: int,
) -> None:
    with tempfile.TemporaryDirectory(prefix="relay-property-") as tmp:
        root = Path(tmp)
        (root / "child.py").write_text(CHILD)
        (root / "output").write_bytes(answer)
        spec = {"mode": mode, "output": str(root / "output"),
                "received": str(root / "received"), "status": status,
                "read_limit": read_limit}
        (root / "spec.json").write_text(json.dumps(spec))
        command = proxy(root / "state", [PYTHON, str(root / "child.py"),
                                         str(root / "spec.json")])
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        stdin, stdout, stderr = process.stdin, process.stdout, process.stderr
        assert stdin is not None and stdout is not None and stderr is not None
        received = bytearray()
        errors = bytearray()

        def client_writes() -> None:
            position, index = 0, 0
            try:
                while position < len(sent):
                    size = chunks[index % len(chunks)]
                    stdin.write(sent[position:position + size])
                    stdin.flush()
                    position += size
                    index += 1
                stdin.close()  # the client's EOF
            except BrokenPipeError:
                pass  # the child stopped reading: the proxy closed its stdin as the child did

        threads = [threading.Thread(target=client_writes),
                   threading.Thread(target=lambda: received.extend(stdout.read())),
                   threading.Thread(target=lambda: errors.extend(stderr.read()))]
        for thread in threads:
            thread.start()
        try:
            returncode = process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(f"{mode}: the proxy did not finish within 60 s") from None
        finally:
            for thread in threads:
                thread.join(60)
        child_received = (root / "received").read_bytes()

    assert bytes(received) == answer, f"{mode}: client got {len(received)}/{len(answer)} bytes"
    if mode == "stop_reading":
        assert child_received == sent[:read_limit]
    else:
        assert child_received == sent, f"{mode}: child got {len(child_received)}/{len(sent)}"
    expected_status = status if status >= 0 else 128 - status
    assert returncode == expected_status, bytes(errors)
    assert b"Traceback" not in errors, bytes(errors)
