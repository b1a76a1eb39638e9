"""The command line's conventions in one place: exit statuses, error and warning lines, verbosity.

Every command follows them (docs/cli.md says so to users):

* exit 0: done (including "nothing to do");
* exit 1 (``CommandFailed``): the command line was understood, but the work failed: a file that
  does not exist or cannot be read or written, an outbox or store that cannot be opened,
  events still pending;
* exit 2 (``UsageError``): the command line (or the config file, flags written down) is wrong
  whatever the machine holds: an unknown command or flag, a bad value, missing or conflicting
  arguments;
* errors are one line on stderr, ``codex-rpc-analytics: error: <what to fix>``; a usage error
  also names the help to read;
* warnings are ``codex-rpc-analytics: warning: <message>`` (``warn()`` or any logger), remarks
  ``codex-rpc-analytics: <message>`` (``note()``); ``-q`` hides both; ``-v`` adds our
  debugging lines (``detail()``, and any ``codex_rpc_analytics.*`` logger's: each batch a sink
  took, each request a collector stored) and the libraries' informational ones, ``-vv`` their
  debugging too.

A command raises ``UsageError`` or ``CommandFailed``; ``main`` prints the line and exits.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, NoReturn

PROG = "codex-rpc-analytics"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# Our own messages go through this logger so that -q/-v apply to them as to everything else.
LOGGER = logging.getLogger("codex_rpc_analytics.cli")
# Every module of the package logs under this one; -v opens its debugging lines (each sink's
# deliveries, each collector request), -vv the libraries' too.
PACKAGE_LOGGER = logging.getLogger("codex_rpc_analytics")


class CommandError(Exception):
    """A one-line message for the user and the exit status that goes with it."""

    status = EXIT_FAILURE

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class CommandFailed(CommandError):
    """The work failed (exit 1, or ``status`` where a command has its own, like the proxy's
    126/127 for a child that cannot be started); the message says what failed and why."""


class UsageError(CommandError):
    """The command line is wrong (exit 2); the message says what to fix.

    ``help_of`` is the command whose ``--help`` the line points to; ``main`` fills it in with
    the command being run when a command leaves it out.
    """

    status = EXIT_USAGE

    def __init__(self, message: str, *, help_of: str | None = None) -> None:
        super().__init__(message)
        self.help_of = help_of


def warn(message: str) -> None:
    """``codex-rpc-analytics: warning: message`` on stderr, unless -q."""
    LOGGER.warning("%s", message)


def note(message: str) -> None:
    """``codex-rpc-analytics: message`` on stderr: a remark for a person, hidden by -q."""
    LOGGER.info("%s", message)


def detail(message: str) -> None:
    """``codex-rpc-analytics: debug: message`` on stderr, with -v only: what a person
    checking what happened wants (which outbox, how many rows), not what everyone needs."""
    LOGGER.debug("%s", message)


class _PrefixedFormatter(logging.Formatter):
    """``codex-rpc-analytics: warning: …``, as compilers and coreutils write their messages."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if not record.name.startswith("codex_rpc_analytics"):
            text = f"{record.name}: {text}"  # a library's message says whose it is
        if record.levelno >= logging.ERROR:
            return f"{PROG}: error: {text}"
        if record.levelno >= logging.WARNING:
            return f"{PROG}: warning: {text}"
        if record.levelno >= logging.INFO:
            return f"{PROG}: {text}"
        return f"{PROG}: debug: {text}"


def configure_logging(verbosity: int) -> None:
    """Route every log record (ours and our libraries') to stderr with the program prefix.

    ``verbosity`` is the count of -v minus the count of -q. Default: warnings (everyone's)
    and the commands' remarks (``note``). -q: errors only. -v: also our own debugging lines
    (the commands' ``detail``, each batch a sink took, each request a collector stored) and
    every library's informational messages. -vv: everything.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrefixedFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    PACKAGE_LOGGER.setLevel(logging.NOTSET)
    if verbosity < 0:
        root.setLevel(logging.ERROR)
        LOGGER.setLevel(logging.ERROR)
    elif verbosity == 0:
        root.setLevel(logging.WARNING)
        LOGGER.setLevel(logging.INFO)
    elif verbosity == 1:
        root.setLevel(logging.INFO)
        LOGGER.setLevel(logging.DEBUG)
        PACKAGE_LOGGER.setLevel(logging.DEBUG)
    else:
        root.setLevel(logging.DEBUG)
        LOGGER.setLevel(logging.DEBUG)


class CommandParser(argparse.ArgumentParser):
    """The parser of the program and of every command (``add_parser`` makes this kind too).

    It gives every command -q/-v, remembers which parser parsed last (so errors name the right
    ``--help``), and turns argparse's errors into ``UsageError``: one line, not the whole usage.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)  # a flag added later must not break scripts
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        verbosity = self.add_argument_group("output")
        # SUPPRESS: a command's parser must not reset what was given before the command.
        verbosity.add_argument("-q", "--quiet", action="count", default=argparse.SUPPRESS,
                               help="print errors only (no warnings or remarks)")
        verbosity.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                               help="print more about what happens; -vv for debugging")
        # The parser that parsed last is the command's: usage errors point to its --help.
        self.set_defaults(command_parser=self)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, help_of=self.prog)


def verbosity_of(args: argparse.Namespace) -> int:
    return int(getattr(args, "verbose", 0)) - int(getattr(args, "quiet", 0))


def report(error: CommandError) -> int:
    """Print ``error`` as its one line on stderr and return its exit status."""
    message = str(error)
    if isinstance(error, UsageError):
        message += f" (see '{error.help_of or PROG} --help')"
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return error.status


if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[CommandParser]
