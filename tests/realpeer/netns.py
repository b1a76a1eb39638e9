"""Run a command in a fresh network namespace that has only loopback (real-codex-peer.md §2).

    unshare --net --pid --fork --kill-child bash -c 'ip link set lo up && exec "$@"' _ cmd…

* `--net`: a new network namespace; its `lo` starts down, hence `ip link set lo up`. Any connect
  to a non-loopback address fails at once with ENETUNREACH.
* `--pid --fork --kill-child`: the command becomes pid 1 of a new pid namespace, so when it ends
  (or `unshare` is killed, e.g. by a test timeout) the kernel kills every process left in it —
  no codex outlives a test. Falls back to `--net` alone where pid namespaces are refused.

Everything that must talk over loopback (backend, codex, proxy, client) has to run inside the
same namespace: that is what `driver.py` is for.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Sequence

LO_UP = 'ip link set lo up && exec "$@"'
UNSHARE_NET = ("unshare", "--net")
UNSHARE_NET_PID = ("unshare", "--net", "--pid", "--fork", "--kill-child")

_PROBE = """
import socket, sys
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
socket.create_connection(srv.getsockname(), timeout=5).close()
try:
    socket.create_connection(("192.0.2.1", 9), timeout=2).close()  # TEST-NET-1, never routed
except OSError:
    print("isolated")
else:
    print("not isolated")
"""


def _wrap(prefix: Sequence[str], argv: Sequence[str]) -> list[str]:
    return [*prefix, "bash", "-c", LO_UP, "_", *argv]


def _probe(prefix: Sequence[str]) -> str | None:
    """None when `prefix` gives a loopback-only namespace, else a one-line reason."""
    try:
        proc = subprocess.run(
            _wrap(prefix, [sys.executable, "-c", _PROBE]),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{' '.join(prefix)} failed to run: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return f"{' '.join(prefix)} failed (exit {proc.returncode}): {last[:200]}"
    if proc.stdout.strip() != "isolated":
        return f"{' '.join(prefix)} did not isolate the network: {proc.stdout.strip()!r}"
    return None


@functools.cache
def _prefix_and_reason() -> tuple[tuple[str, ...] | None, str | None]:
    for tool in ("unshare", "bash", "ip"):
        if shutil.which(tool) is None:
            return None, f"{tool} not found on PATH (needed for a loopback-only network namespace)"
    reason = _probe(UNSHARE_NET_PID)
    if reason is None:
        return UNSHARE_NET_PID, None
    fallback_reason = _probe(UNSHARE_NET)
    if fallback_reason is None:
        return UNSHARE_NET, None
    return None, fallback_reason


def netns_available() -> str | None:
    """None when a loopback-only namespace can be made here, else a one-line reason (cached)."""
    return _prefix_and_reason()[1]


def netns_prefix(pid_namespace: bool = True) -> tuple[str, ...]:
    prefix, reason = _prefix_and_reason()
    if prefix is None:
        raise RuntimeError(f"no network namespace: {reason}")
    return prefix if pid_namespace else UNSHARE_NET


def netns_command(argv: Sequence[str], pid_namespace: bool = True) -> list[str]:
    """`argv` wrapped so that it runs inside a fresh loopback-only namespace.

    `pid_namespace=False` leaves out the pid namespace: codex's own sandbox (bwrap, which makes
    a pid namespace of its own for every command) never finished a command inside ours, so
    sessions whose tools run sandboxed need it off; the caller then kills the process group."""
    return _wrap(netns_prefix(pid_namespace), argv)
