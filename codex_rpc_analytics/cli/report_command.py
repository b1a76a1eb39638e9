"""``report``: the dashboard as one self-contained HTML file."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from ..report import Scope, report_command
from ..store import is_postgres, redact_dsn
from .errors import UsageError, detail
from .options import add_state_dir_option, add_store_option, parse_since, state_dir_of

if TYPE_CHECKING:
    from .errors import Subcommands


def add_parser(subparsers: Subcommands) -> None:
    report = subparsers.add_parser(
        "report", help="write the dashboard as one self-contained HTML file",
        description="Adoption, outcomes, speed, tokens, tools, steering, subagents, settings "
                    "and skills/apps/plugins for a time window, as one HTML file that opens "
                    "from disk with no network. Reads the local outbox, or a collector's "
                    "store with --store.")
    add_state_dir_option(report)
    add_store_option(report)
    report.add_argument("--since", default="30d", metavar="WHEN",
                        help="start of the window: unix seconds, ISO 8601, or an age such as "
                             "12h, 7d (default 30d)")
    report.add_argument("--until", metavar="WHEN",
                        help="end of the window, same forms (default: now)")
    report.add_argument("--client", metavar="NAME",
                        help="only events of this client (product_client_id)")
    report.add_argument("--model", metavar="MODEL", help="only events of this model")
    report.add_argument("-o", "--output", required=True, metavar="FILE.html",
                        help="where to write the report ('-' for standard output)")
    report.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    now = time.time()
    since = parse_since(args.since, now)
    until = parse_since(args.until, now, "--until") if args.until is not None else now
    if until <= since:
        raise UsageError(f"--until ({args.until}) must be later than --since ({args.since})")
    scope = Scope(since_ms=int(since * 1000), until_ms=int(until * 1000),
                  client=args.client, model=args.model)
    state_dir = state_dir_of(args)
    if args.store is None:
        source = f"the outbox in {state_dir}"
    else:  # a PostgreSQL URL may hold a password; a SQLite store is a path
        source = redact_dsn(args.store) if is_postgres(args.store) else args.store
    detail(f"report: {source}, from {_iso(since)} to {_iso(until)}"
           + (f", client {args.client}" if args.client else "")
           + (f", model {args.model}" if args.model else ""))
    return report_command(state_dir, scope, args.output, store=args.store)


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))

