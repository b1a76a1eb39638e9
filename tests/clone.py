"""A fresh clone of this repository, as a new user gets it, for tests that need one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support import REPO


def git_available() -> str | None:
    """None when a clone can be made here, else a one-line reason."""
    if shutil.which("git") is None:
        return "git is not installed"
    if not (REPO / ".git").exists():
        return f"{REPO} is not a git checkout"
    return None


def clone_repository(dest: Path) -> Path:
    """``git clone`` of the repository into ``dest`` (its parent holds nothing else), plus the
    uncommitted changes to tracked files: what the next commit holds. Files git does not track
    are left out, as every clone leaves them out."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(dest)], check=True,
                   capture_output=True, timeout=120)
    diff = subprocess.run(["git", "-C", str(REPO), "diff", "HEAD", "--binary"], check=True,
                          capture_output=True, timeout=60).stdout
    if diff:
        subprocess.run(["git", "-C", str(dest), "apply", "--whitespace=nowarn"], input=diff,
                       check=True, capture_output=True, timeout=60)
    return dest
