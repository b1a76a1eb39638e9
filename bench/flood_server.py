"""A scripted app-server for the flood bench: answers a client's requests with real-shaped
lines (shapes.py) as fast as it can write them.

``initialize`` → its result; ``thread/start`` → the result, ``thread/started`` and an MCP
status line, for the n-th thread; ``turn/start`` → the result and the first half of the turn
(deltas), then it reads the next request, which must be that turn's ``turn/steer``, answers it
and writes the rest of the turn up to ``turn/completed``. Anything else gets ``{"id":…,
"result":{}}``. It exits at EOF.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgspec

# shapes.py sits beside this script; with PYTHONSAFEPATH (as the test suite runs its children)
# Python does not put the script's directory on the path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import Shapes

VARIANTS = 8  # blocks with different deltas, used in turn


class Request(msgspec.Struct):
    id: int | str | None = None
    method: str | None = None


def main() -> int:
    shapes = Shapes()
    decode = msgspec.json.Decoder(Request).decode
    first = [shapes.block(shapes.turn_first, n * 13) for n in range(VARIANTS)]
    second = [shapes.block(shapes.turn_second, n * 17) for n in range(VARIANTS)]
    thread_block = shapes.block([shapes.thread_result, shapes.thread_started,
                                 shapes.mcp_status], 0)
    turn_result = shapes.turn_result + b"\n"
    steer_result = shapes.steer_result + b"\n"
    stdin = sys.stdin.buffer
    out = os.fdopen(1, "wb", buffering=1 << 20)
    threads = turns = 0
    thread = b""
    for line in stdin:
        request = decode(line)
        rid = str(request.id).encode()
        method = request.method
        if method == "initialize":
            out.write(shapes.request(shapes.initialize_result, 0) + b"\n")
        elif method == "thread/start":
            thread = shapes.thread_id(threads)
            threads += 1
            out.write(thread_block % {b"t": thread, b"u": b"", b"i": rid})
        elif method == "turn/start":
            turn = shapes.turn_id(turns)
            values = {b"t": thread, b"u": turn, b"i": rid}
            out.write(turn_result % values)
            out.write(first[turns % VARIANTS] % values)
            steer = decode(stdin.readline())
            out.write(steer_result % {b"t": thread, b"u": turn, b"i": str(steer.id).encode()})
            out.write(second[turns % VARIANTS] % values)
            turns += 1
        elif request.id is not None:
            out.write(b'{"id":%s,"result":{}}\n' % rid)
        out.flush()  # the client may wait for this answer before it writes more
    out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
