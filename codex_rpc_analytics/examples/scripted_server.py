"""A scripted app-server built from a recorded transcript, for the example and the tests.

It reads the client's lines and answers each with the server lines that followed it in the
recording: the ``s2c`` rows before the first ``c2s`` row are sent at start, and after reading
the n-th recorded ``c2s`` line it sends the ``s2c`` rows between that row and the next ``c2s``
row. A line that is not the next expected one is reported on stderr and gets no answer.
Lines are the exact recorded bytes (``raw`` or ``raw_b64``), each written with a newline.

    python -m codex_rpc_analytics.examples.scripted_server TRANSCRIPT [options]

Options for tests: ``--received FILE`` / ``--sent FILE`` (every byte read / written),
``--exit-code N``, ``--exit-signal N`` (die by signal N after the client's EOF),
``--on-sigterm exit:N|ignore`` (``exit:N`` writes ``{"method":"scripted/sigterm"}`` first),
``--no-final-newline`` (the last s2c row goes out without its newline).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.in_process import MemoryWriter
from ..adapters.transcript import CorruptRow, read_rows, row_bytes


@dataclass
class Script:
    opening: list[bytes] = field(default_factory=list)
    # (expected client line, server lines that answer it)
    steps: list[tuple[bytes, list[bytes]]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Script:
        script = cls()
        with path.open("rb") as stream:
            for item in read_rows(stream):
                if isinstance(item, CorruptRow):
                    continue
                _, row = item
                if row.dir == "c2s":
                    script.steps.append((row_bytes(row), []))
                elif row.dir == "s2c":
                    target = script.steps[-1][1] if script.steps else script.opening
                    target.append(row_bytes(row))
        return script

    def client_lines(self) -> list[bytes]:
        return [line for line, _ in self.steps]

    def server_lines(self) -> list[bytes]:
        return self.opening + [line for _, replies in self.steps for line in replies]


async def serve(script: Script, reader: asyncio.StreamReader, writer: MemoryWriter,
                received: bytearray | None = None) -> None:
    """The same server as ``main`` for ``InProcessProxy``: ``InProcessProxy(partial(serve,
    script))``. Every byte read is appended to ``received`` when given."""
    writer.write(b"".join(line + b"\n" for line in script.opening))
    step = 0
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as error:
            line = error.partial
        if not line:
            return
        if received is not None:
            received += line
        bare = line[:-1] if line.endswith(b"\n") else line
        if step < len(script.steps) and bare == script.steps[step][0]:
            writer.write(b"".join(reply + b"\n" for reply in script.steps[step][1]))
            await writer.drain()
            step += 1


class _Output:
    def __init__(self, sent: Path | None, final_newline: bool, total: int) -> None:
        self._out = sys.stdout.buffer
        self._sent = sent.open("wb") if sent else None
        self._final_newline = final_newline
        self._remaining = total

    def send(self, lines: list[bytes]) -> None:
        data = bytearray()
        for line in lines:
            self._remaining -= 1
            data += line
            if self._remaining > 0 or self._final_newline:
                data += b"\n"
        if not data:
            return
        self._out.write(data)
        self._out.flush()
        if self._sent:
            self._sent.write(data)
            self._sent.flush()

    def notify(self, line: bytes) -> None:
        self._out.write(line + b"\n")
        self._out.flush()
        if self._sent:
            self._sent.write(line + b"\n")
            self._sent.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripted_server")
    parser.add_argument("transcript", type=Path)
    parser.add_argument("--received", type=Path)
    parser.add_argument("--sent", type=Path)
    parser.add_argument("--exit-code", type=int, default=0)
    parser.add_argument("--exit-signal", type=int)
    parser.add_argument("--on-sigterm", default="default")
    parser.add_argument("--no-final-newline", action="store_true")
    args = parser.parse_args(argv)
    script = Script.load(args.transcript)
    output = _Output(args.sent, not args.no_final_newline, len(script.server_lines()))
    received = args.received.open("wb") if args.received else None

    if args.on_sigterm == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    elif args.on_sigterm.startswith("exit:"):
        code = int(args.on_sigterm.split(":", 1)[1])

        def on_sigterm(_signum: int, _frame: object) -> None:
            output.notify(b'{"method":"scripted/sigterm"}')
            if received:
                received.close()
            os._exit(code)

        signal.signal(signal.SIGTERM, on_sigterm)

    output.send(script.opening)
    step = 0
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            break
        if received:
            received.write(line)
            received.flush()
        bare = line[:-1] if line.endswith(b"\n") else line
        if step < len(script.steps) and bare == script.steps[step][0]:
            output.send(script.steps[step][1])
            step += 1
        else:
            sys.stderr.write(f"scripted_server: unexpected line {bare[:80]!r}\n")
    if received:
        received.close()
    if args.on_sigterm == "ignore":
        time.sleep(30)  # linger: a child that does not stop when asked
    if args.exit_signal:
        os.kill(os.getpid(), args.exit_signal)
    exit_code: int = args.exit_code
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
