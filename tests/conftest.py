"""Every test runs against the package as installed (`make test` installs it from the tree).

A module imported from the working tree by accident would test code that no user runs, and
would hide a file missing from the wheel; so the session refuses to start when that happens,
and every subprocess a test starts is kept from finding the working tree the same way.

Every run is also audited for reads outside the repository (tests/repo_boundary.py): a user's
clone has nothing beside it, so a test that reads ../shared (or any file a clone lacks) fails
the session, naming the file and the test.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

import codex_rpc_analytics
from tests.pgserver import PgServer, start_server, unavailable_reason
from tests.realpeer.peer_install import cache_root
from tests.repo_boundary import RepoBoundary
from tests.support import REPO, unavailable

# Python 3.11's `-P`, for every child process: `python -m codex_rpc_analytics` run from the
# repository must not pick up ./codex_rpc_analytics.
os.environ["PYTHONSAFEPATH"] = "1"

# The developer's own configuration must not steer the tests (a config file with sinks, or
# codex's `[analytics] enabled = false`, which turns every sink off): every process the tests
# start sees an empty config home and an empty codex home unless a test sets its own.
_ISOLATED = Path(tempfile.mkdtemp(prefix="codex-rpc-analytics-tests-"))
atexit.register(shutil.rmtree, _ISOLATED, True)
os.environ["XDG_CONFIG_HOME"] = str(_ISOLATED / "config")
os.environ["CODEX_HOME"] = str(_ISOLATED / "codex-home")
os.environ.pop("CODEX_RPC_ANALYTICS_CONFIG", None)
os.environ.pop("CODEX_RPC_ANALYTICS_STATE_DIR", None)

_BOUNDARY_KEY = pytest.StashKey[RepoBoundary]()

# No per-example deadline: speed is measured by `make bench`, not by tests, and on a shared
# 2-core machine one slow example (a 300 ms pause under load) is no finding.
settings.register_profile("codex-rpc-analytics", deadline=None)
settings.load_profile("codex-rpc-analytics")


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
    # The real-peer harness installs codex and the SDKs into its cache (README, Tests);
    # _ISOLATED was made before the audit started.
    caches = [cache_root().parent, _ISOLATED]
    config.stash[_BOUNDARY_KEY] = RepoBoundary.install(REPO, caches=caches)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, object, object]:
    boundary = collector.config.stash[_BOUNDARY_KEY]
    boundary.during = f"collection of {collector.nodeid or 'the session'}"
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    item.config.stash[_BOUNDARY_KEY].during = item.nodeid
    return (yield)


def pytest_sessionfinish(session: pytest.Session) -> None:
    boundary = session.config.stash.get(_BOUNDARY_KEY, None)
    if boundary is None:
        return
    boundary.during = "the end of the session"
    violations = boundary.violations()
    if not violations:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = ["tests and benches must read nothing a clone of the repository lacks "
             "(tests/repo_boundary.py):", *(f"  {line}" for line in violations)]
    if reporter is not None:
        reporter.section("reads outside the repository", sep="=", red=True, bold=True)
        for line in lines:
            reporter.line(line, red=True)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- A real PostgreSQL for the store, the collector and the report (tests/pgserver.py) ------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole run, started on first use; tests that need it skip
    with a one-line reason where it cannot run here, and fail instead under CI=true."""
    reason = unavailable_reason()
    if reason is not None:
        unavailable(reason, "PostgreSQL is required under CI=true")
    server = start_server()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_dsn(pg_server: PgServer) -> str:
    """A fresh, empty database on the shared server: each test its own."""
    return pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
