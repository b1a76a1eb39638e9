"""Small files re-read when they change: a sink's token file, codex's ``auth.json``, the
collector's tokens files. One helper for all of them, so all notice the same changes.

A file's stamp is its device, inode, size and modification time (ns): a rewrite in place
changes the size or the mtime, a rename over it (how codex and editors save) the inode, and a
deletion makes it None. One ``stat`` per use, about a microsecond.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
FileStamp = tuple[int, int, int, int]
Stat = Callable[[Path], os.stat_result]
# A stat that failed for another reason than a missing file (a directory we may not enter).
UNREADABLE: FileStamp = (-1, -1, -1, -1)


def file_stamp(path: Path, stat: Stat = os.stat) -> FileStamp | None:
    """The stamp of ``path``; None when it does not exist, :data:`UNREADABLE` when it cannot
    be looked at."""
    try:
        st = stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return UNREADABLE
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class ReloadingFile(Generic[T]):
    """What ``load`` makes of ``path``, made again whenever the file's stamp changes (and on
    every use while it cannot be looked at, so ``load`` reports why)."""

    def __init__(self, path: Path, load: Callable[[], T]) -> None:
        self.path = path
        self._load = load
        self._stamp: FileStamp | None = None
        self._value: T | None = None
        self._loaded = False

    def current(self) -> T:
        stamp = file_stamp(self.path)
        if not self._loaded or stamp != self._stamp or stamp == UNREADABLE:
            self._value, self._stamp, self._loaded = self._load(), stamp, True
        return self._value  # type: ignore[return-value]  # loaded above
