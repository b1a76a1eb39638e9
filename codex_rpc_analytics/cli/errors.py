"""One-line errors for bad input to the tool itself (flags, config, files)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, NoReturn

PROG = "codex-rpc-analytics"
USAGE_ERROR = 2


class UsageError(Exception):
    """Bad input from the user; the message says what to fix."""


def fail(message: str, status: int = USAGE_ERROR) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(status)


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse prints the whole usage on an error; we print one line that says what to fix."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see '{self.prog} --help')")


if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[OneLineArgumentParser]
