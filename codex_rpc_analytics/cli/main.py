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
from .errors import (
    EXIT_USAGE,
    PROG,
    CommandError,
    CommandParser,
    UsageError,
    configure_logging,
    report,
    verbosity_of,
)


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog=PROG,
        description="Codex app-server analytics from the JSON-RPC wire, in your own hands.",
        epilog=f"Run '{PROG} COMMAND --help' for a command's flags. Exit status: 0 done, "
        "1 the command failed, 2 the command line is wrong (the proxy exits with its "
        "child's status).",
    )
    parser.add_argument("-V", "--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands",
                                       parser_class=CommandParser)
    example_command.add_parser(subparsers)
    proxy_command.add_parser(subparsers)
    replay_command.add_parser(subparsers)
    store_commands.add_parsers(subparsers)
    collect_command.add_parser(subparsers)
    report_command.add_parser(subparsers)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parse, naming an unknown flag (not a missing command) and the command whose --help
    to read."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flags = [item for item in unknown if item.startswith("-") and item != "-"]
        culprit = flags[0] if flags else unknown[0]
        message = f"unknown flag {culprit}" if flags else f"unexpected argument {culprit}"
        # Whose --help to read: the command's, unless the flag came before the command.
        words = list(argv)
        before_command = args.command in words and words.index(culprit) < words.index(
            args.command)
        help_of = parser.prog if before_command else args.command_parser.prog
        raise UsageError(message, help_of=help_of)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parse(parser, sys.argv[1:] if argv is None else argv)
    except UsageError as error:
        return report(error)
    configure_logging(verbosity_of(args))
    command_parser: argparse.ArgumentParser = args.command_parser
    if getattr(args, "run", None) is None:  # no command (or a group without its subcommand)
        command_parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        status: int = args.run(args)
    except UsageError as error:
        error.help_of = error.help_of or command_parser.prog
        return report(error)
    except CommandError as error:
        return report(error)
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `| head`): not an error of ours.
        sys.stderr.close()
        return 141
    except KeyboardInterrupt:
        return 130
    return status
