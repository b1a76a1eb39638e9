"""``codex-rpc-analytics proxy [FLAGS] -- COMMAND [ARGS...]``: the main job.

An IDE or SDK launches this instead of ``codex app-server``; stdin/stdout are the JSON-RPC
stream (relayed byte for byte), stderr is the child's own stderr passed through.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..adapters.proxy import DEFAULT_GRACE_S, ChildStartError, ProxyConfig, run_stdio_proxy
from ..adapters.recording import Recorder, RecordingError
from ..adapters.relay_loop import DEFAULT_SPIN_S
from ..adapters.session import DEFAULT_MAX_BACKLOG_BYTES
from ..delivery import (
    CodexSinkSpec,
    ConfigError,
    Settings,
    SinkSpec,
    SinkSpecError,
    load_settings,
    parse_sink_spec,
    with_configured_tokens,
)
from .errors import PROG, CommandFailed, UsageError, detail, warn
from .options import add_sink_options, add_state_dir_option, state_dir_of

if TYPE_CHECKING:
    from .errors import Subcommands


def add_parser(subparsers: Subcommands) -> None:
    parser = subparsers.add_parser(
        "proxy",
        help="relay an app-server's stdio byte for byte and derive its analytics events",
        description="Run COMMAND (e.g. `codex app-server`) as a child and relay the JSON-RPC "
        "stream between this process's stdin/stdout and the child, untouched, deriving "
        "analytics events off the relay path. Events are committed to the local outbox and "
        "shipped to every --sink. Exits with the child's status.",
        usage=f"{PROG} proxy [FLAGS] -- COMMAND [ARGS...]",
    )
    add_sink_options(parser)
    add_state_dir_option(parser)
    parser.add_argument(
        "--grace", type=_seconds, default=DEFAULT_GRACE_S, metavar="SECONDS",
        help="after SIGTERM/SIGINT (or the child's exit), the time to finish analytics and "
        f"flush to the sinks before exiting (default: {DEFAULT_GRACE_S})")
    parser.add_argument(
        "--record", type=Path, metavar="FILE",
        help="also write the session as a transcript (*.rpc.jsonl) that `replay` reads")
    parser.add_argument(
        "--redact", action="store_true",
        help="with --record: replace user content (messages, files, command output, tokens) "
        "by placeholders, keeping every field analytics reads")
    parser.add_argument(
        "--max-backlog-mib", type=_positive_int, default=DEFAULT_MAX_BACKLOG_BYTES >> 20,
        metavar="MIB",
        help="the most bytes waiting for analytics: past a 16th of it, notifications analytics "
        "never reads are skipped as they are relayed (counted) and the rest is packed, past "
        "all of it chunks are "
        f"relayed but not analysed (default: {DEFAULT_MAX_BACKLOG_BYTES >> 20})")
    parser.add_argument(
        "--spin-us", type=_spin_us, default=round(DEFAULT_SPIN_S * 1e6), metavar="US",
        help="after relaying a message, poll this many microseconds before sleeping when the "
        "last one was answered that quickly: lower latency for quick answers, at most that "
        "much CPU per burst; 0 sleeps at once "
        f"(default: {round(DEFAULT_SPIN_S * 1e6)})")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")
    parser.set_defaults(run=run)


def _proxy_sinks(args: argparse.Namespace) -> list[SinkSpec]:
    sinks = []
    for text in args.sink:
        try:
            spec = parse_sink_spec(text)
        except SinkSpecError as error:
            raise UsageError(str(error)) from None
        if isinstance(spec, CodexSinkSpec):
            raise UsageError(
                "--sink codex is refused by the proxy: codex app-server already posts these "
                "events to OpenAI itself, so the proxy's copies would arrive twice (the codex "
                "sink is for in-process hosts that replace codex)")
        sinks.append(spec)
    return sinks


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 3600 seconds: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _spin_us(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be between 0 and 10000 microseconds: {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    command: list[str] = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("proxy needs the command to run after '--', e.g. "
                         f"'{PROG} proxy -- codex app-server'")
    if args.redact and args.record is None:
        raise UsageError("--redact applies to the recording: use it with --record FILE")
    sinks = [] if not args.sink else _proxy_sinks(args)
    try:
        settings: Settings | None = load_settings()
    except ConfigError as error:
        # The user's codex session matters more than our analytics: relay regardless.
        warn(f"{error}; analytics are off for this session (the proxy only relays)")
        settings = None
    analytics = settings is not None and settings.enabled
    if settings is not None and not settings.enabled and (args.sink or args.record):
        warn(f"analytics are turned off in {settings.path} (enabled = false): "
             "--sink and --record are ignored")
    settings = settings or Settings()
    if analytics and args.sink:
        sinks = with_configured_tokens(sinks, settings.sinks)
    elif analytics:
        sinks = list(settings.sinks)
    recorder = None
    if analytics and args.record is not None:
        try:
            recorder = Recorder(args.record, redact=args.redact)
        except RecordingError as error:
            raise CommandFailed(str(error)) from None
    config = ProxyConfig(
        command=command,
        state_dir=state_dir_of(args, settings),
        sinks=sinks,
        codex_home=args.codex_home,
        grace=args.grace,
        recorder=recorder,
        max_backlog_bytes=args.max_backlog_mib << 20,
        argv=command,
        spin=args.spin_us / 1e6,
        analytics=analytics,
        batch=settings.batch,
        outbox=settings.outbox,
    )
    detail(f"proxy: state directory {config.state_dir}, sinks: "
           f"{', '.join(spec.key for spec in sinks) or 'none (the outbox only)'}")
    try:
        status = run_stdio_proxy(config)
    except ChildStartError as error:
        if recorder is not None:
            recorder.close(0.0)
        # A shell's status for a command it cannot start: 127 not found, 126 not executable.
        raise CommandFailed(str(error), error.status) from None
    # A flush answer may still be waiting on its executor, delivery's thread is closed or past
    # its deadline: nothing of ours is left to save, so leave without joining them.
    sys.stderr.flush()
    os._exit(status)
