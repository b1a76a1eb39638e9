"""A throwaway PostgreSQL server for tests and benches: ``initdb`` + ``pg_ctl`` in a temp dir.

Only the standard library, so ``bench/`` can import it too (it puts ``tests/`` on its path).

The server listens on a free loopback port only (no Unix socket), trusts loopback connections
(a test database that lives for one run) and is stopped and deleted by :meth:`stop`.
PostgreSQL refuses to run as root; as root the data directory is given to an unprivileged user
(``nobody``, which every Debian image has) and the server runs as that user through
``setpriv``, so the same code works on a developer's machine and as root on CI.

Where the binaries are missing, :func:`unavailable_reason` says so in one line: tests skip
with it, and fail instead when ``CI=true`` (see ``require_postgres``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PG_BIN_CANDIDATES = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15")]
UNPRIVILEGED_USER = "nobody"


def pg_bin_dir() -> Path | None:
    explicit = os.environ.get("CODEX_RPC_ANALYTICS_PG_BIN")
    candidates = [Path(explicit)] if explicit else PG_BIN_CANDIDATES
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def unavailable_reason() -> str | None:
    """Why no test PostgreSQL can be started here, or None when it can."""
    if pg_bin_dir() is None:
        return ("PostgreSQL server binaries not found (apt-get install postgresql; "
                "or set CODEX_RPC_ANALYTICS_PG_BIN)")
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            return "running as root and setpriv (util-linux) is missing to drop privileges"
        try:
            pwd.getpwnam(UNPRIVILEGED_USER)
        except KeyError:
            return f"running as root and there is no {UNPRIVILEGED_USER!r} user to run PostgreSQL"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL instance. ``dsn`` reaches database ``postgres`` as superuser ``postgres``."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port
        bin_dir = pg_bin_dir()
        assert bin_dir is not None, unavailable_reason()
        self._bin = bin_dir

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(self._bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            cmd = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}",
                   "--clear-groups", *cmd]
        # LC_ALL=C: initdb needs a locale that exists; C always does.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False, cwd=self.root)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{what} failed ({result.returncode}): {result.stderr.strip()}"
                               f"\n{log}")

    def init(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._check(self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                              "--no-sync", "-E", "UTF8", "--locale=C"), "initdb")
        settings = (
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            "unix_socket_directories = ''\n"
            # A test server: durability across a power cut is not what is tested; a crash of
            # the server process (pg_ctl stop -m immediate) still loses nothing committed.
            "fsync = off\n"
            "synchronous_commit = on\n"
            "full_page_writes = off\n"
            "max_connections = 200\n"
            "shared_buffers = 64MB\n"
            "logging_collector = off\n"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    def start(self, timeout: float = 60) -> None:
        started = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
                            "-t", str(int(timeout)), "start", timeout=timeout + 5)
        self._check(started, "pg_ctl start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends sessions and shuts down cleanly; ``immediate`` is a crash."""
        self._check(self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"),
                    "pg_ctl stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its DSN."""
        self._check(self._run("psql", "-X", "-q", "-d", self.dsn, "-c",
                              f'CREATE DATABASE "{name}"'), "CREATE DATABASE")
        return self.dsn.rsplit("/", 1)[0] + f"/{name}"

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.data), "status").returncode == 0

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            if self.data.exists() and self.running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start_server(settings_port: int | None = None) -> PgServer:
    """Create, configure and start a server in a fresh temp dir; the caller stops it."""
    # Not pytest's tmp_path: that lives under a 0700 directory the unprivileged user cannot
    # traverse. mkdtemp makes a private directory in /tmp that is then handed over.
    root = Path(tempfile.mkdtemp(prefix="cra-pg-"))
    server = PgServer(root, settings_port or free_port())
    try:
        server.init()
        for attempt in range(3):
            try:
                server.start()
                break
            except RuntimeError:
                # The free port was taken in the meantime: try another.
                if attempt == 2:
                    raise
                server.port = free_port()
                _rewrite_port(server)
    except BaseException:
        server.cleanup()
        raise
    return server


def _rewrite_port(server: PgServer) -> None:
    conf = server.data / "postgresql.conf"
    lines = [line for line in conf.read_text().splitlines() if not line.startswith("port = ")]
    lines.append(f"port = {server.port}")
    conf.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def running_server() -> Iterator[PgServer]:
    server = start_server()
    try:
        yield server
    finally:
        server.cleanup()
