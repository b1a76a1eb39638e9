"""``codex-rpc-analytics replay``: transcripts in, one compact JSON event a line out."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters.replay import replay_transcript
from ..core import encode_event
from ..core.facts import TRANSPORTS
from ..host import host_runtime
from .errors import fail, warn

if TYPE_CHECKING:
    from .errors import Subcommands


def add_parser(subparsers: Subcommands) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="derive the analytics events of recorded RPC transcripts",
        description="Replay *.rpc.jsonl transcripts through the tap and print each event as "
        "one compact JSON line, in order.",
    )
    parser.add_argument("--transport", choices=TRANSPORTS, default=None,
                        help="the rpc_transport the session used (default: what the recording's "
                             "meta row says, else stdio)")
    parser.add_argument("transcripts", nargs="+", type=Path, metavar="TRANSCRIPT")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    paths: list[Path] = args.transcripts
    for path in paths:
        if not path.is_file():
            fail(f"transcript not found: {path}")
    # A long replay makes millions of short-lived objects and keeps few (the rows and probes are
    # not even tracked): leave everything loaded so far out of every collection, and collect
    # the young generation less often than every 700 allocations.
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    out = sys.stdout.buffer
    for path in paths:
        try:
            for event in replay_transcript(path, transport=args.transport,
                                           host_runtime=host_runtime(), warn=warn):
                out.write(encode_event(event) + b"\n")
        except BrokenPipeError:
            raise  # our reader went away (`| head`): not the transcript's fault (main.py)
        except OSError as error:
            fail(f"cannot read transcript {path}: {error.strerror or error}")
    out.flush()
    return 0
