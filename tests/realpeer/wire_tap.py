"""A minimal recording tap: `python wire_tap.py OUT.jsonl -- CMD [ARGS…]`.

Spawns CMD and relays stdin → CMD → stdout (and CMD's stderr to stderr) line by line, writing
every line to OUT.jsonl in the fixtures' transcript format (`{t, dir, raw}`, dir `meta`, `c2s`,
`s2c`, `stderr`). SIGTERM and SIGINT are forwarded to CMD; the tap exits with CMD's status
(128+N when CMD died of signal N) once CMD has exited and its output is relayed.

driver.py puts it in front of the peer when an SDK session asks for `record_wire`, since the SDK
owns the pipes there. Standard library only; it is run by path.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any


class Recorder:
    def __init__(self, path: str) -> None:
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self._t0 = time.monotonic()

    def row(self, direction: str, raw: str) -> None:
        line = json.dumps(
            {"t": round(time.monotonic() - self._t0, 4), "dir": direction, "raw": raw}
        )
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def meta(self, **values: Any) -> None:
        self.row("meta", json.dumps(values))

    def close(self) -> None:
        self._file.close()


def _text(line: bytes) -> str:
    return line.rstrip(b"\n").decode("utf-8", errors="replace")


def _relay(source: IO[bytes], sink: IO[bytes], recorder: Recorder, direction: str) -> None:
    for line in iter(source.readline, b""):
        recorder.row(direction, _text(line))
        with contextlib.suppress(BrokenPipeError, ValueError):
            sink.write(line)
            sink.flush()
    if direction == "c2s":
        recorder.meta(closing_stdin=True)
    with contextlib.suppress(BrokenPipeError, ValueError):
        sink.close()  # pass EOF on: the peer sees stdin close, the client sees stdout close


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: wire_tap.py OUT.jsonl -- CMD [ARGS…]", file=sys.stderr)
        return 2
    recorder = Recorder(argv[0])
    command = argv[2:]
    recorder.meta(argv=command)
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    recorder.meta(pid=proc.pid)

    def forward(signum: int, _frame: object) -> None:
        recorder.meta(signal=signal.Signals(signum).name)
        proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(
            target=_relay, args=(sys.stdin.buffer, proc.stdin, recorder, "c2s"), daemon=True
        ),
        threading.Thread(
            target=_relay, args=(proc.stdout, sys.stdout.buffer, recorder, "s2c"), daemon=True
        ),
        threading.Thread(
            target=_relay, args=(proc.stderr, sys.stderr.buffer, recorder, "stderr"), daemon=True
        ),
    ]
    for pump in pumps:
        pump.start()
    code = proc.wait()
    for pump in pumps[1:]:
        pump.join(timeout=2)
    recorder.meta(exit_code=code)
    recorder.close()
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
