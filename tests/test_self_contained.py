"""A clone of the repository needs nothing beside it: not ../shared, not this checkout.

Running the whole suite a second time in a clone would double its time, so the proof comes in
three cheap parts that together cover what that run would:

* every pytest run is audited (tests/repo_boundary.py, installed by tests/conftest.py): the
  session fails when a test opens a file outside the repository (beyond the interpreter,
  system files, its own temporary files and the real-peer cache) or a file the repository
  holds but git does not track;
* here, a real ``git clone`` into an empty temporary directory collects the whole suite under
  the same audit (the reads that broke a fresh clone happened at collection), and must find
  every test this session has;
* and runs every bench section at a tiny size (``bench/run.py --smoke``) under the audit.

The audit itself is tested last: it must see a read of ``../shared``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.clone import clone_repository, git_available
from tests.support import REPO, unavailable


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = git_available()
    if reason is not None:
        unavailable(reason, "CI must prove the clone is self-contained")
    # The clone's parent directory holds nothing else: no ../shared.
    return clone_repository(tmp_path_factory.mktemp("empty") / "codex-rpc-analytics")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PYTHONSAFEPATH"] = "1"  # the installed package, never the clone's tree
    return env


def test_a_fresh_clone_collects_every_test_with_nothing_beside_it(
    clone: Path, request: pytest.FixtureRequest
) -> None:
    assert sorted(os.listdir(clone.parent)) == ["codex-rpc-analytics"]
    result = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone, env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    collected = {line for line in result.stdout.splitlines() if "::" in line}
    # Every test of this session whose module a clone has is collected there too.
    ours = {item.nodeid for item in request.session.items
            if (clone / item.nodeid.split("::", 1)[0]).is_file()}
    assert ours and ours <= collected, sorted(ours - collected)[:10]


_BENCH_UNDER_AUDIT = textwrap.dedent("""
    import importlib.util, json, os, runpy, sys
    from pathlib import Path

    clone, report = Path(sys.argv[1]), Path(sys.argv[2])
    spec = importlib.util.spec_from_file_location(
        "repo_boundary", clone / "tests" / "repo_boundary.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["repo_boundary"] = module
    spec.loader.exec_module(module)
    # The tool's own cache (the report's Vega bundle, the real-peer installs) is allowed, as
    # in the suite's audit: it is made on first use on any machine.
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    boundary = module.RepoBoundary.install(clone, caches=[cache / "codex-rpc-analytics"])
    boundary.during = "bench/run.py --smoke"
    sys.argv = [str(clone / "bench" / "run.py"), "--smoke"]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
        status = 0
    except SystemExit as exit:
        status = exit.code if isinstance(exit.code, int) else 1
    report.write_text(json.dumps(boundary.violations()))
    sys.exit(status)
""")


def test_the_benches_run_in_a_fresh_clone_reading_only_the_clone(
    clone: Path, tmp_path: Path
) -> None:
    report = tmp_path / "violations.json"
    result = subprocess.run(
        [sys.executable, "-P", "-c", _BENCH_UNDER_AUDIT, str(clone), str(report)],
        cwd=clone, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert json.loads(report.read_text()) == []
    sections = {line for line in result.stdout.splitlines() if line.startswith("== ")}
    assert {"== replay ==", "== delivery ==", "== relay ==", "== client =="} <= sections


def test_the_audit_sees_a_read_beside_the_repository(tmp_path: Path) -> None:
    """The check above can fail: a fake repository whose code reads ../shared is caught."""
    repo = tmp_path / "repo"
    (repo / "tests").mkdir(parents=True)
    shared = tmp_path / "shared" / "fixtures.jsonl"
    shared.parent.mkdir()
    shared.write_text("{}\n")
    (repo / "tests" / "reader.py").write_text(
        "from pathlib import Path\n"
        "def read():\n"
        "    return (Path(__file__).parent.parent.parent / 'shared' / 'fixtures.jsonl')"
        ".read_text()\n")
    script = textwrap.dedent(f"""
        import importlib.util, json, sys
        spec = importlib.util.spec_from_file_location(
            "repo_boundary", {str(REPO / "tests" / "repo_boundary.py")!r})
        module = importlib.util.module_from_spec(spec)
        sys.modules["repo_boundary"] = module
        spec.loader.exec_module(module)
        boundary = module.RepoBoundary.install({str(repo)!r})
        sys.path.insert(0, {str(repo / "tests")!r})
        import reader
        reader.read()
        import subprocess
        subprocess.run(["cat", "../shared/fixtures.jsonl"], cwd={str(repo)!r}, check=True,
                       capture_output=True)
        print(json.dumps(boundary.violations()))
    """)
    result = subprocess.run([sys.executable, "-P", "-c", script], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=60, check=True)
    violations = json.loads(result.stdout)
    assert len(violations) == 2, violations
    assert all(line.startswith(f"{os.path.realpath(shared)} (") for line in violations)
    assert "open at tests/reader.py:3" in violations[0]
    assert "subprocess.Popen" in violations[1]
