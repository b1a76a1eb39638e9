"""Every test runs against the package as installed (`make test` installs it from the tree).

A module imported from the working tree by accident would test code that no user runs, and
would hide a file missing from the wheel; so the session refuses to start when that happens,
and every subprocess a test starts is kept from finding the working tree the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import codex_rpc_analytics
from tests.support import REPO

# Python 3.11's `-P`, for every child process: `python -m codex_rpc_analytics` run from the
# repository must not pick up ./codex_rpc_analytics.
os.environ["PYTHONSAFEPATH"] = "1"


def imported_from_working_tree() -> Path | None:
    location = Path(codex_rpc_analytics.__file__).resolve()
    return location if location.parent == REPO / "codex_rpc_analytics" else None


def pytest_configure(config: pytest.Config) -> None:
    location = imported_from_working_tree()
    if location is not None:
        raise pytest.UsageError(
            f"codex_rpc_analytics was imported from the working tree ({location}), not the "
            "installed package: run `make test` (or `make install` then `python -P -m pytest`)"
        )
