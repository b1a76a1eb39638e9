"""``codex-rpc-analytics example``: the main job end to end, no codex, no account.

It runs the real pipeline an IDE would: ``codex-rpc-analytics proxy`` as a subprocess around a
scripted app-server that plays the server's side of a session recorded from codex 0.169.0
(initialize, a thread, two turns, a resume, a fork, a turn on the fork, a second thread).
This command is the client: it sends the recorded client lines one at a time, waits for the
server's recorded answers and checks they arrived byte for byte, closes its end like an SDK
does, and once the proxy has exited prints the events the proxy committed to its outbox (the
embedded default sink), one compact JSON line each.

The outbox lives in a temporary state directory that is removed afterwards, and the proxy
reads an empty config file: the example's events describe a recorded session, not the
user's, and must not mix with (or later be shipped from) the real outbox, nor go to the
user's configured sinks; a fresh outbox also makes the output the same on every run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ..delivery import Outbox, OutboxError
from ..delivery.settings import CONFIG_ENV
from ..examples.scripted_server import Script
from .errors import CommandFailed, note, verbosity_of

if TYPE_CHECKING:
    from .errors import Subcommands

EXAMPLE_TRANSCRIPT = "codex-0.169.0-session.rpc.jsonl"
TIMEOUT_S = 30.0


def example_transcript() -> Path:
    return Path(str(resources.files("codex_rpc_analytics") / "examples" / EXAMPLE_TRANSCRIPT))


def add_parser(subparsers: Subcommands) -> None:
    parser = subparsers.add_parser(
        "example",
        help="run the proxy around a scripted app-server replaying a bundled codex session, "
        "then print the events it derived")
    parser.set_defaults(run=run)


def proxy_command(state_dir: Path, transcript: Path, *, verbose: bool = False) -> list[str]:
    """``verbose``: the proxy's -v, so ``example -v`` shows what the proxy did (its sinks, each
    delivery, what each sink holds at the end)."""
    return [sys.executable, "-m", "codex_rpc_analytics", "proxy", *(["-v"] if verbose else []),
            "--state-dir", str(state_dir),
            "--", sys.executable, "-m", "codex_rpc_analytics.examples.scripted_server",
            str(transcript)]


def _read_lines(stream: IO[bytes], count: int) -> list[bytes]:
    return [stream.readline() for _ in range(count)]


def run(args: argparse.Namespace) -> int:
    transcript = example_transcript()
    script = Script.load(transcript)
    with tempfile.TemporaryDirectory(prefix="codex-rpc-analytics-example-") as tmp:
        state_dir = Path(tmp) / "state"
        # An empty config file: the user's sinks (a team collector) must not receive the
        # example's events, and an `enabled = false` there must not empty the example.
        config = Path(tmp) / "config.toml"
        config.write_bytes(b"")
        env = {**os.environ, CONFIG_ENV: str(config)}
        proxy = subprocess.Popen(proxy_command(state_dir, transcript,
                                               verbose=verbosity_of(args) > 0), env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert proxy.stdin is not None and proxy.stdout is not None
        received = _read_lines(proxy.stdout, len(script.opening))
        for line, replies in script.steps:
            proxy.stdin.write(line + b"\n")
            proxy.stdin.flush()
            received += _read_lines(proxy.stdout, len(replies))
        proxy.stdin.close()
        received.append(proxy.stdout.read())
        try:
            status = proxy.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proxy.kill()
            raise CommandFailed("the proxy did not exit in time") from None
        if status != 0:
            raise CommandFailed(f"the proxy exited with status {status}")
        expected = b"".join(line + b"\n" for line in script.server_lines())
        if b"".join(received) != expected:
            raise CommandFailed(
                "the client did not receive the recorded server output byte for byte")
        try:
            outbox = Outbox.open_readonly(state_dir)
        except OutboxError as error:
            raise CommandFailed(str(error)) from None
        try:
            payloads = list(outbox.payloads([], None))
        finally:
            outbox.close()
    out = sys.stdout.buffer
    for payload in payloads:
        out.write(payload + b"\n")
    out.flush()
    note(f"example: relayed {len(script.steps)} client and {len(script.server_lines())} "
         f"server lines byte for byte through `codex-rpc-analytics proxy`; "
         f"{len(payloads)} events committed to its outbox")
    return 0
