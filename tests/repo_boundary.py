"""Tests and benches read nothing outside the repository: a user's clone has nothing beside it.

``RepoBoundary.install`` adds an audit hook (PEP 578) to the running interpreter that sees
every file it opens for reading, every directory it lists, every SQLite database it connects
to and every command line it starts (a path handed to a child process counts as read). Outside
the repository a run may read only what any machine running the suite has:

* the interpreter, its standard library and the virtualenv (``sys.prefix`` and friends);
* system files (``/usr``, ``/etc``, ``/proc``, ``/dev``, ...);
* whatever the run itself created (directories it made, files it wrote: ``tmp_path``,
  ``tempfile``), and the caches named by the caller (the real-peer harness installs codex and
  the SDKs into one and says so in the README).

Anything else (``../shared``, another checkout, ``~/.codex``, the user's state directory) is a
violation. Inside the repository, every file read must be tracked by git (or ignored, like
``.venv`` and tool caches), because a clone has only tracked files. ``tests/conftest.py``
installs it for every pytest run and fails the session on a violation; the clone test
(``tests/test_self_contained.py``) installs it around the benches.

The hook cannot see what a child process opens by itself, only the paths on its command line;
children here are the tool itself (which opens what it is told to) and the benches' helpers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

SYSTEM_ROOTS = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/proc", "/sys",
                "/dev", "/run")
_READS = frozenset({"open", "os.listdir", "os.scandir", "sqlite3.connect"})
_CREATES = frozenset({"os.mkdir", "tempfile.mkdtemp", "tempfile.mkstemp"})
_STARTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.exec"})
_WATCHED = _READS | _CREATES | _STARTS
_WRITE_FLAGS = os.O_CREAT | os.O_WRONLY | os.O_APPEND | os.O_TRUNC


@dataclass(frozen=True)
class Access:
    path: str
    how: str  # the audit event
    where: str  # the first frame inside the repository, file:line
    during: str  # the test (or collection) that was running


@dataclass
class RepoBoundary:
    repo: Path
    allowed: list[str]
    created: set[str] = field(default_factory=set)
    outside: list[Access] = field(default_factory=list)
    inside: set[str] = field(default_factory=set)  # repository-relative paths read
    during: str = "start-up"
    _local: threading.local = field(default_factory=threading.local)

    @classmethod
    def install(cls, repo: Path, caches: Iterable[Path] = ()) -> RepoBoundary:
        """Start auditing this process (for good: audit hooks cannot be removed)."""
        roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                 *SYSTEM_ROOTS, *(str(c) for c in caches)}
        boundary = cls(Path(os.path.realpath(repo)),
                       sorted({os.path.realpath(root) for root in roots}))
        sys.addaudithook(boundary._hook)
        return boundary

    # -- the hook ----------------------------------------------------------------------------

    def _hook(self, event: str, args: tuple[object, ...]) -> None:
        if event not in _WATCHED or getattr(self._local, "busy", False):
            return
        self._local.busy = True  # what the hook itself does must not re-enter it
        try:
            self._on(event, args)
        finally:
            self._local.busy = False

    def _on(self, event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            path, _mode, flags = args
            if isinstance(flags, int) and flags & _WRITE_FLAGS:
                self._mark_created(path)
            else:
                self._check(path, event)
        elif event in _CREATES:
            self._mark_created(args[0])
        elif event == "sqlite3.connect":
            database = args[0]
            if isinstance(database, str) and database.startswith("file:"):
                database = unquote(urlsplit(database).path)
            if database != ":memory:":
                self._check(database, event)
        elif event in _READS:
            self._check(args[0], event)
        else:  # a child process: its working directory and the paths on its command line
            cwd = args[2] if event == "subprocess.Popen" and len(args) > 2 else None
            if isinstance(cwd, (str, bytes, os.PathLike)):
                self._check(cwd, event)
            argv = args[1] if len(args) > 1 else ()
            for arg in argv if isinstance(argv, (list, tuple)) else ():
                for candidate in _path_arguments(arg):
                    self._check(candidate, event, base=cwd)

    # -- classification ----------------------------------------------------------------------

    def _mark_created(self, path: object) -> None:
        resolved = _resolve(path)
        if resolved is not None:
            self.created.add(resolved)

    def _check(self, path: object, how: str, base: object = None) -> None:
        resolved = _resolve(path, base)
        if resolved is None:
            return
        repo = str(self.repo)
        if resolved == repo or resolved.startswith(repo + os.sep):
            if not _under(resolved, self.allowed):  # the virtualenv lives in the repo
                self.inside.add(os.path.relpath(resolved, repo))
            return
        if _under(resolved, self.allowed) or self._was_created(resolved):
            return
        if not os.path.lexists(resolved):
            return  # nothing there to depend on (a test's deliberately missing path)
        self.outside.append(Access(resolved, how, self._where(), self.during))

    def _was_created(self, path: str) -> bool:
        while True:
            if path in self.created:
                return True
            parent = os.path.dirname(path)
            if parent == path:
                return False
            path = parent

    def _where(self) -> str:
        frame = sys._getframe(3)
        repo = str(self.repo) + os.sep
        while frame is not None:
            name = os.path.realpath(frame.f_code.co_filename)
            if name.startswith(repo) and not name.endswith("repo_boundary.py"):
                return f"{os.path.relpath(name, repo)}:{frame.f_lineno}"
            frame = frame.f_back  # type: ignore[assignment]
        return "(outside the repository's code)"

    # -- the verdict -------------------------------------------------------------------------

    def untracked_reads(self) -> list[str]:
        """Files read inside the repository that a clone would not have: neither tracked by
        git nor ignored (ignored ones are tool caches). Empty when the repository is not a
        git checkout."""
        if not (self.repo / ".git").exists():
            return []
        # Python sources are left to the clone test: a module a clone lacks fails its
        # collection or its benches, and a new test not yet added harms no clone.
        files = sorted(p for p in self.inside
                       if not p.endswith((".py", ".pyc")) and (self.repo / p).is_file())
        tracked = set(_git(self.repo, "ls-files", "-z").split("\0"))
        unknown = [p for p in files if p not in tracked]
        if not unknown:
            return []
        ignored = set(_git(self.repo, "check-ignore", "-z", "--stdin",
                           stdin="\0".join(unknown) + "\0", ok_statuses=(0, 1)).split("\0"))
        return [p for p in unknown if p not in ignored]

    def violations(self) -> list[str]:
        lines = []
        seen: set[tuple[str, str]] = set()
        for access in self.outside:
            if (access.path, access.where) not in seen:
                seen.add((access.path, access.where))
                lines.append(f"{access.path} ({access.how} at {access.where}, during "
                             f"{access.during}): outside the repository")
        lines += [f"{path}: read inside the repository but not tracked by git, so a clone "
                  "does not have it (git add it)" for path in self.untracked_reads()]
        return lines


def _resolve(path: object, base: object = None) -> str | None:
    if isinstance(path, int) or path is None:
        return None  # a file descriptor: its path was checked when it was opened
    if not isinstance(path, (str, bytes, os.PathLike)):
        return None
    text = os.fsdecode(path)
    if not text:
        return None
    if not os.path.isabs(text) and isinstance(base, (str, bytes, os.PathLike)):
        text = os.path.join(os.fsdecode(base), text)
    return os.path.realpath(text)


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _path_arguments(arg: object) -> list[str]:
    """What in one command-line argument names a file: ``/abs``, ``./rel``, ``../rel``, also
    after ``--flag=``."""
    if not isinstance(arg, (str, bytes, os.PathLike)):
        return []
    text = os.fsdecode(arg)
    candidates = [text, text.split("=", 1)[1] if "=" in text else ""]
    return [c for c in candidates
            if c.startswith(("/", "./", "../")) and "\n" not in c and " " not in c]


def _git(repo: Path, *args: str, stdin: str | None = None,
         ok_statuses: tuple[int, ...] = (0,)) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True,
                            text=True, timeout=60, check=False)
    if result.returncode not in ok_statuses:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout
