"""SQLite files (the outbox, the collector's store) that are in WAL mode from the moment they
exist, so that processes opening a new one together never have to switch it.

Switching a rollback-journal file to WAL reads page 1 and then upgrades to a write lock, and
SQLite does not wait (busy_timeout) for a lock upgrade: of two processes switching one new file
at once, the one that found the other's write lock failed with "database is locked". WAL is
recorded in the file, so on a file that is WAL when it appears, `PRAGMA journal_mode = WAL` only
reads, and writers wait for each other under busy_timeout as intended.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path


def create_wal_file(path: Path) -> None:
    """Create an empty SQLite file in WAL mode at ``path``, private (0600), unless a file
    appears there first. Raises OSError or sqlite3.Error."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    draft = Path(name)
    try:
        conn = sqlite3.connect(draft, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()  # checkpoints and removes the draft's -wal and -shm
        with contextlib.suppress(FileExistsError):  # another process's file came first
            os.link(draft, path)  # appears whole, already WAL
    finally:
        draft.unlink(missing_ok=True)
