"""Entry point: ``codex-rpc-analytics <command> ...`` and ``python -m codex_rpc_analytics``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from . import (
    collect_command,
    example_command,
    proxy_command,
    replay_command,
    report_command,
    store_commands,
)
from .errors import PROG, OneLineArgumentParser


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="Codex app-server analytics from the JSON-RPC wire, in your own hands.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       parser_class=OneLineArgumentParser)
    subparsers.required = True
    example_command.add_parser(subparsers)
    proxy_command.add_parser(subparsers)
    replay_command.add_parser(subparsers)
    store_commands.add_parsers(subparsers)
    collect_command.add_parser(subparsers)
    report_command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        status: int = args.run(args)
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `| head`): not an error of ours.
        sys.stderr.close()
        return 141
    except KeyboardInterrupt:
        return 130
    return status
