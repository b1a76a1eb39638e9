"""A careful naive tap: what a straightforward Python relay with analytics costs.

``python naive_tap.py COMMAND [ARGS...]`` runs COMMAND as a child and relays stdin → child and
child → stdout, one blocking thread per direction. Careful: every chunk is written on before
it is looked at, lines are framed across chunks (no line-length limit), and analysis never
blocks the relay for more than its own line. Naive: every line is decoded whole with the
standard library's ``json`` and its method looked up, with no pre-filter and no batching. The
benches run it beside ``cat`` and the proxy as the baseline of "a simple tap".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

TAPPED = frozenset(("initialize", "thread/start", "thread/resume", "thread/fork", "turn/start",
                    "turn/steer", "turn/interrupt", "thread/started", "turn/started",
                    "turn/completed", "item/completed", "thread/tokenUsage/updated"))


def pump(source: int, destination: int, counts: dict[str, int]) -> None:
    partial = b""
    while True:
        data = os.read(source, 1 << 16)
        if not data:
            break
        view = memoryview(data)
        while view:
            view = view[os.write(destination, view):]
        lines = (partial + data).split(b"\n")
        partial = lines.pop()
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("method") in TAPPED:
                counts[message["method"]] = counts.get(message["method"], 0) + 1
    os.close(destination)


def main(argv: list[str]) -> int:
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert child.stdin is not None and child.stdout is not None
    counts: dict[str, int] = {}
    up = threading.Thread(target=pump, args=(0, child.stdin.fileno(), counts), daemon=True)
    up.start()
    pump(child.stdout.fileno(), 1, counts)
    return child.wait()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
