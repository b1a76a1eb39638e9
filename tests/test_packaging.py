"""The package as a user gets it: ``python -m build``, then ``pip install dist/*.whl`` into a
clean virtualenv, from a fresh clone.

``python -m build`` runs as users run it (an isolated build environment fetched from the
package index, the sdist first, the wheel built from the sdist). The clean virtualenv has no
pip of its own (``--without-pip``, which saves the few seconds of bootstrapping one); the
suite's pip installs into it with ``--python``, resolving the dependencies from the index as
``pip install`` does.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import codex_rpc_analytics
from tests.clone import clone_repository, git_available
from tests.support import REPO, unavailable

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


@dataclass(frozen=True)
class Built:
    source: Path  # the clone it was built from
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    reason = git_available()
    if reason is not None:
        unavailable(reason, "CI must build the package from a clone")
    root = tmp_path_factory.mktemp("packaging")
    source = clone_repository(root / "src" / "codex-rpc-analytics")
    dist = root / "dist"
    result = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(os.listdir(dist))
    return Built(source, wheels[0], sdists[0])


def _tracked(source: Path, under: str) -> list[str]:
    listing = subprocess.run(["git", "-C", str(source), "ls-files", "-z", under], check=True,
                             capture_output=True, text=True, timeout=60).stdout
    return sorted(name for name in listing.split("\0") if name)


def _metadata(text: str) -> email.message.Message:
    return email.parser.Parser().parsestr(text)


def test_the_wheel_carries_every_file_of_the_package_and_the_license(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"codex_rpc_analytics-{VERSION}.dist-info"
        metadata = _metadata(wheel.read(f"{info}/METADATA").decode())
        license_text = wheel.read(f"{info}/licenses/LICENSE").decode()
    package = _tracked(built.source, "codex_rpc_analytics")
    assert {"codex_rpc_analytics/py.typed",
            "codex_rpc_analytics/examples/codex-0.169.0-session.rpc.jsonl"} <= set(package)
    missing = [name for name in package if name not in names]
    assert missing == [], f"tracked package files missing from the wheel: {missing}"
    assert license_text == (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert metadata["Name"] == "codex-rpc-analytics" and metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Author"]
    classifiers = metadata.get_all("Classifier") or []
    assert "Operating System :: POSIX :: Linux" in classifiers
    assert "Typing :: Typed" in classifiers
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Source", "Issues", "Documentation"} <= set(urls)


def test_the_sdist_carries_the_package_the_license_and_the_readme(built: Built) -> None:
    top = f"codex_rpc_analytics-{VERSION}"
    with tarfile.open(built.sdist) as sdist:
        names = {name.removeprefix(f"{top}/") for name in sdist.getnames()}
    expected = {"LICENSE", "README.md", "pyproject.toml",
                *_tracked(built.source, "codex_rpc_analytics")}
    assert sorted(expected - names) == []


def test_the_wheel_installs_into_a_clean_venv_and_runs(built: Built, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
         "--disable-pip-version-check", str(built.wheel)],
        capture_output=True, text=True, timeout=600, check=False)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    cli = venv / "bin" / "codex-rpc-analytics"
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    for flag in ("--version", "-V"):
        version = subprocess.run([str(cli), flag], capture_output=True, text=True, timeout=60,
                                 check=False, env=env, cwd=tmp_path)
        assert (version.returncode, version.stdout) == (0, f"codex-rpc-analytics {VERSION}\n")
    # The bundled example needs the data files and the package's own modules from the wheel.
    example = subprocess.run([str(cli), "example"], capture_output=True, timeout=120,
                             check=False, env=env, cwd=tmp_path)
    assert example.returncode == 0, example.stderr
    events = [json.loads(line)["event_type"] for line in example.stdout.splitlines()]
    assert "codex_thread_initialized" in events and "codex_turn_event" in events
    typed = subprocess.run(
        [str(python), "-c", "import codex_rpc_analytics, pathlib; "
         "print((pathlib.Path(codex_rpc_analytics.__file__).parent / 'py.typed').is_file())"],
        capture_output=True, text=True, timeout=60, check=True, env=env, cwd=tmp_path)
    assert typed.stdout == "True\n"


def test_the_version_is_written_once_and_read_from_the_metadata() -> None:
    assert codex_rpc_analytics.__version__ == VERSION
    assert importlib.metadata.version("codex-rpc-analytics") == VERSION
    written = [str(path.relative_to(REPO)) for path in (REPO / "codex_rpc_analytics").rglob("*.py")
               if f'"{VERSION}"' in path.read_text()]
    assert written == [], f"the version is written in {written}: read __version__ instead"
