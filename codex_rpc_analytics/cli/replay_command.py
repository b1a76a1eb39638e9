"""``codex-rpc-analytics replay``: transcripts in, one compact JSON event a line out."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters.replay import replay_stream, replay_transcript
from ..core import AnyEvent, encode_event
from ..core.facts import TRANSPORTS
from ..host import host_runtime
from .errors import CommandFailed, UsageError, detail, warn

if TYPE_CHECKING:
    from .errors import Subcommands

STDIN = "-"


def add_parser(subparsers: Subcommands) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="derive the analytics events of recorded RPC transcripts",
        description="Replay *.rpc.jsonl transcripts through the tap and print each event as "
        "one compact JSON line, in order. '-' reads a transcript from stdin.",
    )
    parser.add_argument("--transport", choices=TRANSPORTS, default=None,
                        help="the rpc_transport the session used (default: what the recording's "
                             "meta row says, else stdio)")
    parser.add_argument("transcripts", nargs="+", metavar="TRANSCRIPT",
                        help="a *.rpc.jsonl file, or - for stdin")
    parser.set_defaults(run=run)


def _events(name: str, args: argparse.Namespace) -> Iterator[AnyEvent]:
    if name == STDIN:
        return replay_stream(sys.stdin.buffer, "<stdin>", transport=args.transport,
                             host_runtime=host_runtime(), warn=warn)
    return replay_transcript(Path(name), transport=args.transport,
                             host_runtime=host_runtime(), warn=warn)


def run(args: argparse.Namespace) -> int:
    names: list[str] = args.transcripts
    if names.count(STDIN) > 1:
        raise UsageError("'-' (stdin) can be given once")
    for name in names:  # all checked before any output
        if name != STDIN and not Path(name).is_file():
            raise CommandFailed(f"transcript not found: {name}")
    # A long replay makes millions of short-lived objects and keeps few (the rows and probes are
    # not even tracked): leave everything loaded so far out of every collection, and collect
    # the young generation less often than every 700 allocations.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    out = sys.stdout.buffer
    for name in names:
        count = 0
        try:
            for event in _events(name, args):
                out.write(encode_event(event) + b"\n")
                count += 1
        except BrokenPipeError:
            raise  # our reader went away (`| head`): not the transcript's fault (main.py)
        except OSError as error:
            raise CommandFailed(f"cannot read transcript {name}: "
                                f"{error.strerror or error}") from None
        detail(f"replay: {count} events from {name}")
    out.flush()
    return 0
