"""``flush``, ``stats`` and ``events``: what is in the durable outbox, and delivering it."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..delivery import flush_command, requeue_command, resolve_codex_home
from ..store import events_command, stats_command
from .errors import CommandFailed, UsageError, detail
from .options import (
    add_sink_options,
    add_state_dir_option,
    add_store_option,
    parse_since,
    settings_of,
    sinks_of,
    state_dir_of,
)

if TYPE_CHECKING:
    from .errors import Subcommands


def add_parsers(subparsers: Subcommands) -> None:
    flush = subparsers.add_parser(
        "flush", help="deliver everything pending in the outbox",
        description="Deliver every pending event. Without --sink, to every sink that has "
                    "pending events (with the tokens the config file gives them). Exit 0 when "
                    "all was delivered, 1 with a count otherwise.")
    add_state_dir_option(flush)
    add_sink_options(flush)
    flush.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                       help="give up after this long; what remains stays pending (default 30)")
    flush.set_defaults(run=run_flush)

    requeue = subparsers.add_parser(
        "requeue", help="send rejected events again",
        description="Put the events a sink rejected (parked in the outbox) back to pending, so "
                    "the next proxy or `flush` sends them. Without --sink, for every sink.")
    add_state_dir_option(requeue)
    requeue.add_argument("--sink", action="append", default=[], metavar="SINK",
                         help="only this sink (as given to --sink; repeatable)")
    requeue.set_defaults(run=run_requeue)

    stats = subparsers.add_parser(
        "stats", help="summarise the outbox or a store: threads, turns, delivery per sink")
    add_state_dir_option(stats)
    add_store_option(stats)
    stats.add_argument("--json", action="store_true",
                       help="print the same figures as one JSON document, for scripts")
    stats.set_defaults(run=run_stats)

    events = subparsers.add_parser("events", help="print stored events as JSON lines")
    add_state_dir_option(events)
    add_store_option(events)
    events.add_argument("--type", action="append", default=[], metavar="EVENT_TYPE",
                        help="only this event_type (repeatable)")
    events.add_argument("--since", metavar="WHEN",
                        help="only events stored since WHEN: unix seconds, ISO 8601, or an age "
                             "such as 30m, 12h, 7d")
    events.set_defaults(run=run_events)


def run_flush(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    settings = settings_of(args)
    if not settings.enabled:
        raise CommandFailed(
            f"analytics are turned off in {settings.path} (enabled = false): nothing is sent")
    return flush_command(_state_dir(args), sinks_of(args), resolve_codex_home(args.codex_home),
                         args.timeout, configured=settings.sinks, batch=settings.batch,
                         outbox_settings=settings.outbox)


def run_requeue(args: argparse.Namespace) -> int:
    return requeue_command(_state_dir(args), sinks_of(args))


def run_stats(args: argparse.Namespace) -> int:
    return stats_command(_state_dir(args), sys.stdout, store=args.store, as_json=args.json)


def run_events(args: argparse.Namespace) -> int:
    since = None
    if args.since is not None:
        since = parse_since(args.since, time.time())
    return events_command(_state_dir(args), sys.stdout, args.type, since, store=args.store)


def _state_dir(args: argparse.Namespace) -> Path:
    state_dir = state_dir_of(args)
    if getattr(args, "store", None) is None:
        detail(f"{args.command}: state directory {state_dir}")
    return state_dir
