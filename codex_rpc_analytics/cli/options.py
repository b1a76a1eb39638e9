"""Flags shared by every command that reads or ships the store: where it is, where events go."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..delivery import (
    ConfigError,
    Settings,
    SinkSpec,
    SinkSpecError,
    load_settings,
    parse_sink_spec,
    resolve_state_dir,
    with_configured_tokens,
)
from ..report.scope import parse_moment
from .errors import UsageError


def add_state_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, metavar="DIR",
        help="where the durable outbox lives (default: $CODEX_RPC_ANALYTICS_STATE_DIR, else "
             "${XDG_STATE_HOME:-~/.local/state}/codex-rpc-analytics)")


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store", metavar="STORE",
        help="read a collector's store instead of the local outbox: postgresql://USER@HOST/DB "
             "or a SQLite store file (sqlite:PATH or PATH)")


def add_sink_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sink", action="append", default=[], metavar="SINK",
        help="where to ship events, repeatable; replaces the config file's sinks: jsonl:PATH, "
             "https://HOST/PATH/ (a collector: the Codex analytics endpoint under that base, "
             "with the token the config file gives it, never the ChatGPT login), http:// for "
             "loopback addresses only, or 'codex' for codex's own endpoint with the ChatGPT "
             "login (not for the proxy: codex posts those events itself). Without --sink, the "
             "config file's sinks; without either, events stay in the outbox.")
    parser.add_argument(
        "--codex-home", type=Path, metavar="DIR",
        help="where codex keeps auth.json and config.toml (default: $CODEX_HOME, else ~/.codex)")


def settings_of(args: argparse.Namespace) -> Settings:
    """The config file's settings (read once per command); a bad file is a usage error."""
    settings: Settings | None = getattr(args, "_settings", None)
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as error:
            raise UsageError(str(error)) from None
        args._settings = settings
    return settings


def state_dir_of(args: argparse.Namespace, settings: Settings | None = None) -> Path:
    """--state-dir > $CODEX_RPC_ANALYTICS_STATE_DIR > the config file's > the default."""
    configured = (settings or settings_of(args)).state_dir
    return resolve_state_dir(args.state_dir, configured)


def sinks_of(args: argparse.Namespace, settings: Settings | None = None) -> list[SinkSpec]:
    """The --sink values, each with the token the config file sets for that sink, if any."""
    specs = []
    for text in args.sink:
        try:
            specs.append(parse_sink_spec(text))
        except SinkSpecError as error:
            raise UsageError(str(error)) from None  # the message names the --sink value
    if not specs:
        return specs
    return with_configured_tokens(specs, (settings or settings_of(args)).sinks)


def parse_since(text: str, now: float, flag: str = "--since") -> float:
    """A ``--since``/``--until`` value (report/scope.py's parser, shared with the dashboard);
    a bad one is a usage error naming the flag."""
    try:
        return parse_moment(text, now)
    except ValueError as error:
        raise UsageError(f"{flag} {text}: {error}") from None
