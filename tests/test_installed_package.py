"""The suite tests the package as installed, never the working tree by accident."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import codex_rpc_analytics
from tests.support import REPO


def test_the_package_under_test_is_the_installed_one() -> None:
    location = Path(codex_rpc_analytics.__file__).resolve()
    assert location.parent != REPO / "codex_rpc_analytics", location
    assert "site-packages" in location.parts


@pytest.mark.parametrize("working_tree_first", [False, True])
def test_a_session_that_imports_the_working_tree_refuses_to_run(working_tree_first: bool) -> None:
    env = dict(os.environ)
    if working_tree_first:
        env["PYTHONPATH"] = str(REPO)  # ./codex_rpc_analytics shadows the installed package
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(REPO / "tests" / "test_schemas.py")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    if working_tree_first:
        assert proc.returncode != 0
        assert "imported from the working tree" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stdout + proc.stderr
