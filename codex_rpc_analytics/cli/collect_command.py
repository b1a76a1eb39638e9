"""``collect``: the team collector; ``collect token add NAME`` / ``collect token list``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..collector import (
    READ_TOKENS_FILENAME,
    TOKENS_FILENAME,
    TokenFileError,
    add_token,
    serve,
    token_names,
)
from ..store import DEFAULT_STORE_FILENAME, StoreError
from .errors import CommandFailed, UsageError, note
from .options import add_state_dir_option, state_dir_of

if TYPE_CHECKING:
    from .errors import Subcommands

DEFAULT_PORT = 8419


def add_parser(subparsers: Subcommands) -> None:
    collect = subparsers.add_parser(
        "collect", help="run the team collector that proxies ship events to",
        description="Receive analytics events from many proxies (POST "
                    "…/codex/analytics-events/events with an ingest token) and store each "
                    "exactly once. With no flags: a SQLite store in the state directory and "
                    f"127.0.0.1:{DEFAULT_PORT}.")
    add_state_dir_option(collect)
    collect.add_argument(
        "--store", metavar="STORE",
        help="postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (any number of collectors may share "
             f"it), or a SQLite file (default: {DEFAULT_STORE_FILENAME} in the state directory)")
    collect.add_argument("--listen", default=f"127.0.0.1:{DEFAULT_PORT}", metavar="HOST:PORT",
                         help=f"address to serve on (default 127.0.0.1:{DEFAULT_PORT}; port 0: "
                              "any free port, printed at start)")
    collect.add_argument("--reuse-port", action="store_true",
                         help="share the port with other collectors on this machine "
                              "(SO_REUSEPORT: the kernel spreads connections over them)")
    add_tokens_option(collect)
    add_read_tokens_option(collect)
    collect.set_defaults(run=run_collect)

    commands = collect.add_subparsers(dest="collect_command", metavar="token")
    token = commands.add_parser("token", help="manage ingest tokens and dashboard read tokens")
    token_commands = token.add_subparsers(dest="token_command", metavar="add|list")
    token_commands.required = True
    add = token_commands.add_parser(
        "add", help="create an ingest token for NAME, print it once and store its hash",
        description="Create an ingest token: printed once on stdout, only its SHA-256 is "
                    "kept in the tokens file. NAME is stored as the source of every event "
                    "sent with it. Revoke by deleting its line; a running collector reloads.")
    add.add_argument("name", metavar="NAME")
    add_read_option(add)
    add_tokens_option(add)
    add_read_tokens_option(add)
    add_state_dir_option(add)
    add.set_defaults(run=run_token_add)
    listing = token_commands.add_parser("list", help="print the names in the tokens file")
    add_read_option(listing)
    add_tokens_option(listing)
    add_read_tokens_option(listing)
    add_state_dir_option(listing)
    listing.set_defaults(run=run_token_list)


def add_tokens_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tokens", type=Path, metavar="FILE", default=argparse.SUPPRESS,
        help=f"the ingest tokens file (default: {TOKENS_FILENAME} in the state directory)")


def add_read_tokens_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--read-tokens", type=Path, metavar="FILE", default=argparse.SUPPRESS,
        help="the read tokens file: who may open the dashboard at / (default: "
             f"{READ_TOKENS_FILENAME} in the state directory)")


def add_read_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--read", action="store_true",
        help=f"a read token for the dashboard at / ({READ_TOKENS_FILENAME}, or "
             "--read-tokens FILE), not an ingest token")


def ingest_tokens_path_of(args: argparse.Namespace) -> Path:
    explicit: Path | None = getattr(args, "tokens", None)
    return explicit.expanduser() if explicit else state_dir_of(args) / TOKENS_FILENAME


def read_tokens_path_of(args: argparse.Namespace) -> Path:
    explicit: Path | None = getattr(args, "read_tokens", None)
    return explicit.expanduser() if explicit else state_dir_of(args) / READ_TOKENS_FILENAME


def tokens_path_of(args: argparse.Namespace) -> Path:
    """The file ``token add|list`` works on: ``--tokens`` names the ingest tokens file and
    ``--read-tokens`` the read tokens file, never the other way round."""
    if getattr(args, "read", False):
        if getattr(args, "tokens", None) is not None:
            raise UsageError("--tokens names the ingest tokens file; for a read token give "
                             "--read-tokens FILE")
        return read_tokens_path_of(args)
    if getattr(args, "read_tokens", None) is not None:
        raise UsageError("--read-tokens names the read tokens file: add --read for a read "
                         "token")
    return ingest_tokens_path_of(args)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or a.samefile(b)
    except OSError:
        return False


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {text}: expected HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    return host.strip("[]"), int(port)


def run_collect(args: argparse.Namespace) -> int:
    host, port = _listen(args.listen)
    tokens, read_tokens = ingest_tokens_path_of(args), read_tokens_path_of(args)
    if _same_file(tokens, read_tokens):
        raise UsageError(f"--tokens and --read-tokens are both {tokens}: ingest and read "
                         "tokens need files of their own")
    store = args.store or str(state_dir_of(args) / DEFAULT_STORE_FILENAME)
    logger = logging.getLogger("codex_rpc_analytics.collector")
    # asyncpg's pool logs each failed reconnection with a traceback; the collector says once
    # that the store is unavailable and once that it is back, which is what an operator needs.
    logging.getLogger("asyncpg").setLevel(logging.CRITICAL)
    try:
        asyncio.run(serve(store, host, port, tokens, reuse_port=args.reuse_port,
                          read_tokens_path=read_tokens, logger=logger,
                          announce=sys.stderr))
    except StoreError as exc:
        raise CommandFailed(str(exc)) from None
    except OSError as exc:
        raise CommandFailed(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    return 0


def run_token_add(args: argparse.Namespace) -> int:
    path = tokens_path_of(args)
    try:
        before = token_names(path).count(args.name)
        token = add_token(path, args.name, read=args.read)
    except TokenFileError as exc:
        raise CommandFailed(str(exc)) from None
    print(token)
    kind = "read token" if args.read else "token"
    note(f"{kind} for {args.name!r} added to {path}; it is shown only this once")
    if before:
        note(f"{args.name!r} now has {before + 1} tokens in {path}; each works until its line "
             "is deleted (rotation: delete the old one once the new one is in use)")
    return 0


def run_token_list(args: argparse.Namespace) -> int:
    try:
        names = token_names(tokens_path_of(args))
    except TokenFileError as exc:
        raise CommandFailed(str(exc)) from None
    for name in names:
        print(name)
    return 0
