"""Who holds a lease on outbox rows, and whether that process is still alive.

A sender leases the rows it is sending so that two processes never send the same event at
once. A lease used to be trusted until it expired (40-70 s), so after a ``kill -9`` mid-request
nothing could send those rows for that long, and ``flush`` gave up at once. Now each
``Delivery`` proves it is alive with an exclusive ``flock`` on a file only it holds,
``<state dir>/owners/<owner id>.lock``; the kernel drops the lock the instant the process dies
(however it dies), so another process can tell a dead owner at once: it can take the lock.
Unlike a pid check this survives pid reuse and pid namespaces (containers sharing a state
directory), and needs no ``/proc``.

The owner id is ``<pid>-<random>``; the pid is only there to tell the user whom ``flush`` is
waiting for. The lock file is created under a temporary name, locked, then renamed into place,
so a file under its final name is always locked by a living owner or left by a dead one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from pathlib import Path

OWNERS_DIRNAME = "owners"


def _lock_path(state_dir: Path, owner: str) -> Path:
    return state_dir / OWNERS_DIRNAME / f"{owner}.lock"


class LeaseOwner:
    """This ``Delivery``'s identity in the outbox's leases, held alive by a file lock."""

    def __init__(self, state_dir: Path) -> None:
        self.id = f"{os.getpid()}-{uuid.uuid4().hex[:16]}"
        self._state_dir = state_dir
        self._fd: int | None = None

    def acquire(self) -> None:
        """Create and lock the owner's file; raises OSError (the outbox is then unusable too)."""
        if self._fd is not None:
            return
        owners = self._state_dir / OWNERS_DIRNAME
        owners.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = _lock_path(self._state_dir, self.id)
        temporary = final.with_suffix(".new")
        fd = os.open(temporary, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temporary, final)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(_lock_path(self._state_dir, self.id))
        os.close(self._fd)
        self._fd = None


def owner_pid(owner: str) -> int | None:
    """The pid in an owner id (None for ids written by older versions: plain uuids)."""
    head = owner.split("-", 1)[0]
    return int(head) if head.isdigit() and "-" in owner else None


def is_alive(state_dir: Path, owner: str) -> bool:
    """Whether the process that holds ``owner``'s leases is still running.

    No lock file means dead; a file we can lock means dead too (we remove it on the way). An
    owner id written by an older version (no pid, no lock file) counts as alive: its leases
    expire as they always did."""
    if owner_pid(owner) is None:
        return True  # an older version's owner: cannot tell, its leases expire as before
    path = _lock_path(state_dir, owner)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True  # cannot tell: assume alive, the lease expiry still bounds the wait
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return False
    finally:
        os.close(fd)
