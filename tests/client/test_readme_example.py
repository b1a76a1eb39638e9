"""The README's client example runs, and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.support import REPO


def _section_blocks(section: str) -> list[tuple[str, str]]:
    readme = (REPO / "README.md").read_text()
    start = readme.index(f"\n## {section}\n")
    end = readme.find("\n## ", start + 1)
    body = readme[start:end if end >= 0 else None]
    return re.findall(r"```(\w+)\n(.*?)```", body, flags=re.S)


def test_readme_client_example_runs_and_prints_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex-home"))  # no [analytics] opt-out
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    blocks = _section_blocks("The in-process client")
    code = next(text for lang, text in blocks if lang == "python")
    expected = next(text for lang, text in blocks if lang == "text")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert out.getvalue() == expected
