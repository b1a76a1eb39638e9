"""``codex-rpc-analytics example``: the main job on a bundled session, no codex, no account.

It replays a session recorded from the real codex 0.169.0 (initialize, a thread, two turns,
a resume, a fork, a turn on the fork, a second thread) and prints the events it yields.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters.replay import replay_transcript
from ..core import encode_event
from ..host import host_runtime
from .errors import warn

if TYPE_CHECKING:
    from .errors import Subcommands

EXAMPLE_TRANSCRIPT = "codex-0.169.0-session.rpc.jsonl"


def example_transcript() -> Path:
    return Path(str(resources.files("codex_rpc_analytics") / "examples" / EXAMPLE_TRANSCRIPT))


def add_parser(subparsers: Subcommands) -> None:
    parser = subparsers.add_parser(
        "example", help="run on a bundled recorded codex session and print its events"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = sys.stdout.buffer
    for event in replay_transcript(example_transcript(), transport="stdio",
                                   host_runtime=host_runtime(), warn=warn):
        out.write(encode_event(event) + b"\n")
    out.flush()
    return 0
