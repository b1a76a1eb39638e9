"""A bare relay: ``python bare_relay.py COMMAND [ARGS...]`` relays stdin → child → stdout with
one ``select.poll`` loop and nothing else (no framing, no analytics). The paced bench runs it
beside the proxy: the floor of what any Python process in the middle costs per message.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys


def main(argv: list[str]) -> int:
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert child.stdin is not None and child.stdout is not None
    child_in, child_out = child.stdin.fileno(), child.stdout.fileno()
    poll = select.poll()
    poll.register(0, select.POLLIN)
    poll.register(child_out, select.POLLIN)
    while True:
        for fd, _events in poll.poll():
            source, destination = (0, child_in) if fd == 0 else (child_out, 1)
            data = os.read(source, 1 << 16)
            if not data:
                child.stdin.close()
                return child.wait() if source == child_out else _drain(child_out, child)
            view = memoryview(data)
            while view:
                view = view[os.write(destination, view):]


def _drain(child_out: int, child: subprocess.Popen[bytes]) -> int:
    while data := os.read(child_out, 1 << 16):
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
    return child.wait()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
