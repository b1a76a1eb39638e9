"""Every command and snippet in the README is exercised: a README a new user cannot reproduce
fails the suite.

Each fenced block must be claimed by one of the checks below, or ``test_every_block_is_checked``
fails and names it:

* ```python: run as written (top-level ``await`` allowed, as in an asyncio REPL), in a
  subprocess with the installed package, in an empty directory, with a throwaway
  ``CODEX_HOME`` and state directory. When the prose after it says it ``prints`` and a
  ```text block follows, the output must be exactly that text.
* ```bash: every command line must be run by ``.ci/run`` on CI's fresh clone (``make test``,
  ``make example``), or be matched by an entry of ``COMMAND_CHECKS`` that runs it here.
* an untagged block that draws a file tree: every file and folder it names exists.

And every file in the repository's folders that the prose names in backquotes
(``tests/...py``, ``core/tap.py``) exists.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO

README = REPO / "README.md"
PACKAGE = REPO / "codex_rpc_analytics"


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # the line of the opening fence, 1-based
    section: str  # the heading above it
    prose_after: str  # the text between this block and the next one

    @property
    def label(self) -> str:
        return f"README.md:{self.line} ({self.lang or 'untagged'}, {self.section})"


def readme_blocks(text: str | None = None) -> list[Block]:
    lines = (README.read_text() if text is None else text).splitlines()
    found: list[tuple[str, str, int, str, int]] = []  # lang, text, line, section, end line
    section = "(top)"
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif line.startswith("```"):
            lang = line[3:].strip()
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            found.append((lang, "\n".join(lines[index + 1:end]) + "\n", index + 1, section, end))
            index = end
        index += 1
    blocks = []
    for position, (lang, body, start, heading, end) in enumerate(found):
        stop = found[position + 1][2] - 1 if position + 1 < len(found) else len(lines)
        blocks.append(Block(lang, body, start, heading, "\n".join(lines[end + 1:stop])))
    return blocks


BLOCKS = readme_blocks()


# -- python ------------------------------------------------------------------------------------

_RUN_SNIPPET = textwrap.dedent("""
    import ast, asyncio, sys
    source = open(sys.argv[1]).read()
    code = compile(source, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, {"__name__": "__main__"})
    if asyncio.iscoroutine(result):
        asyncio.run(result)
""")


def _printed_output(block: Block) -> str | None:
    """The ```text block the prose after ``block`` says it prints, if any."""
    position = BLOCKS.index(block)
    following = BLOCKS[position + 1] if position + 1 < len(BLOCKS) else None
    if following is not None and following.lang == "text" and re.search(
            r"\bprints\b", block.prose_after):
        return following.text
    return None


def sandbox_env(root: Path) -> dict[str, str]:
    """No state of the user's: codex's home, the outbox and temporary files all under root."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(CODEX_HOME=str(root / "codex-home"), XDG_STATE_HOME=str(root / "state"),
               CODEX_RPC_ANALYTICS_STATE_DIR=str(root / "state" / "codex-rpc-analytics"),
               TMPDIR=str(root), PYTHONSAFEPATH="1")
    return env


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python"],
                         ids=lambda b: f"line{b.line}")
def test_python_snippets_run_as_written(block: Block, tmp_path: Path) -> None:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(block.text)
    work = tmp_path / "cwd"
    work.mkdir()
    result = subprocess.run([sys.executable, "-P", "-c", _RUN_SNIPPET, str(snippet)],
                            cwd=work, env=sandbox_env(tmp_path), capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{block.label}:\n{result.stderr[-3000:]}"
    expected = _printed_output(block)
    if expected is not None:
        assert result.stdout == expected, block.label


# -- bash --------------------------------------------------------------------------------------

def commands_of(block: Block) -> list[str]:
    commands = []
    for line in block.text.splitlines():
        command = re.sub(r"(^|\s)#.*$", "", line).strip()
        if command:
            commands.append(command)
    return commands


def ci_commands() -> set[str]:
    return {line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()}


# Commands a test here runs itself (a pattern, and a function given the command and a
# sandbox directory). The README rewrite adds entries as it adds commands.
COMMAND_CHECKS: list[tuple[str, Callable[[str, Path], None]]] = []


def _check_for(command: str) -> Callable[[str, Path], None] | None:
    for pattern, check in COMMAND_CHECKS:
        if re.fullmatch(pattern, command):
            return check
    return None


BASH_COMMANDS = [(block, command) for block in BLOCKS if block.lang in ("bash", "sh", "console")
                 for command in commands_of(block)]


@pytest.mark.parametrize(("block", "command"), BASH_COMMANDS,
                         ids=[command for _, command in BASH_COMMANDS])
def test_shell_commands_are_run_by_ci_or_here(block: Block, command: str,
                                              tmp_path: Path) -> None:
    if command in ci_commands():
        return  # .ci/run runs it on a fresh clone, on a fresh machine
    check = _check_for(command)
    assert check is not None, (
        f"{block.label}: `{command}` is run by no test: add it to .ci/run or COMMAND_CHECKS")
    check(command, tmp_path)


# -- file trees --------------------------------------------------------------------------------

_ENTRY = re.compile(r"[\w.-]+/?")


def tree_entries(block: Block) -> list[str]:
    """The paths a drawn tree names: a line indented two more than its folder starts with
    one or more comma-separated names; deeper lines continue a description."""
    paths: list[str] = []
    parents: list[tuple[int, str]] = []  # (indent, folder path)
    for line in block.text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        while parents and parents[-1][0] >= indent:
            parents.pop()
        expected_indent = parents[-1][0] + 2 if parents else 0
        if indent != expected_indent:
            continue  # a description running on
        names = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0].split(", ")
        if not all(_ENTRY.fullmatch(name) for name in names):
            continue
        base = parents[-1][1] if parents else ""
        for name in names:
            paths.append(base + name)
        if len(names) == 1 and names[0].endswith("/"):
            parents.append((indent, base + names[0]))
    return paths


def _is_tree(block: Block) -> bool:
    first = block.text.splitlines()[0] if block.text.strip() else ""
    return block.lang == "" and bool(re.fullmatch(r"[\w.-]+/", first.strip()))


@pytest.mark.parametrize("block", [b for b in BLOCKS if _is_tree(b)], ids=lambda b: f"line{b.line}")
def test_file_trees_name_files_that_exist(block: Block) -> None:
    entries = tree_entries(block)
    assert len(entries) > 5, block.label
    missing = [entry for entry in entries if not (REPO / entry).exists()]
    assert missing == [], f"{block.label} names what the repository does not have: {missing}"


# -- every block is claimed --------------------------------------------------------------------

def _claimed(block: Block) -> bool:
    if block.lang == "python":
        return True
    if block.lang in ("bash", "sh", "console"):
        return True  # each command is checked above
    if block.lang == "text":
        position = BLOCKS.index(block)
        return position > 0 and BLOCKS[position - 1].lang == "python" and (
            _printed_output(BLOCKS[position - 1]) == block.text)
    return _is_tree(block)


def test_every_block_is_checked() -> None:
    unchecked = [block.label for block in BLOCKS if not _claimed(block)]
    assert unchecked == [], f"README blocks no test checks: {unchecked}"
    assert BLOCKS, "no fenced blocks found in README.md"


def test_the_block_parser_finds_what_it_should() -> None:
    """The checks above are only as good as the parsing: a small README, parsed."""
    sample = textwrap.dedent("""\
        # Title
        ```bash
        make example   # a comment
        ```
        ## Use
        ```python
        print("hi")
        ```
        prints:
        ```text
        hi
        ```
        ```
        pkg/
          a.py, b.py   two modules
                       running on
          sub/       a folder
            c.py
        tests/
        ```
        """)
    blocks = readme_blocks(sample)
    assert [(b.lang, b.line, b.section) for b in blocks] == [
        ("bash", 2, "Title"), ("python", 6, "Use"), ("text", 10, "Use"), ("", 13, "Use")]
    assert commands_of(blocks[0]) == ["make example"]
    assert blocks[1].prose_after == "prints:"
    assert tree_entries(blocks[3]) == ["pkg/", "pkg/a.py", "pkg/b.py", "pkg/sub/",
                                       "pkg/sub/c.py", "tests/"]


# -- files named in the prose ------------------------------------------------------------------

def test_files_the_readme_names_exist() -> None:
    prose = re.sub(r"```.*?```", "", README.read_text(), flags=re.S)
    paths = set(re.findall(r"`([\w.-]+(?:/[\w.-]+)+\.\w+)`", prose))
    # Paths in the repository's folders (`tests/x.py`, `core/tap.py`), not examples of a
    # user's paths (`.codex/skills/doc/SKILL.md`).
    named = {path for path in paths if any((root / path.split("/", 1)[0]).is_dir()
                                           for root in (REPO, PACKAGE))}
    assert named, "no file names found: the pattern is wrong"
    missing = sorted(name for name in named
                     if not (REPO / name).exists() and not (PACKAGE / name).exists())
    assert missing == [], f"README.md names files that do not exist: {missing}"
