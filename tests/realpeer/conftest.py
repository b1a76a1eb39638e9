"""Fixtures for the real-peer tests: the namespace, the codex binary, the SDK venv.

Each prerequisite that is missing skips the tests that need it with a one-line reason — except
under CI=true, where the project's machines must run them, so the reason becomes a failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pytest

from tests import support

from .netns import netns_available
from .peer_install import PeerUnavailable, install_codex, install_sdk_venv


def unavailable(reason: str) -> NoReturn:
    """Skip with `reason`, or fail with it when CI=true."""
    support.unavailable(reason, "real peer unavailable in CI")


@pytest.fixture(scope="session")
def netns_ok() -> None:
    reason = netns_available()
    if reason is not None:
        unavailable(reason)


@pytest.fixture(scope="session")
def codex_binary() -> Path:
    try:
        return install_codex()
    except PeerUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    try:
        return install_sdk_venv()
    except PeerUnavailable as exc:
        unavailable(str(exc))


# Tables the scenario matrix (test_matrix.py) prints at the end of the run.
MATRIX_TABLES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for table in MATRIX_TABLES:
        terminalreporter.write_line("")
        for line in table.splitlines():
            terminalreporter.write_line(line)
