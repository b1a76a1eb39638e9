"""Every command and snippet in the README is exercised: a README a new user cannot reproduce
fails the suite.

Each fenced block must be claimed by one of the checks below, or ``test_every_block_is_checked``
fails and names it:

* ```python: run as written (top-level ``await`` allowed, as in an asyncio REPL), in a
  subprocess with the installed package, in an empty directory, with a throwaway
  ``CODEX_HOME`` and state directory. When the prose after it says it ``prints`` and a
  ```text block follows, the output must be exactly that text. A snippet that uses the
  official SDK (``openai_codex``) runs as written against the real codex instead
  (``tests/realpeer/test_readme_sdk.py``). The Python snippets of ``DOCS_WITH_SNIPPETS`` run
  the same way.
* ```toml: a config file, loaded as the proxy loads it; every sink it names is parsed.
* ```bash: every command line of the block is run by ``.ci/run`` on CI's fresh clone
  (``make test``, ``make example``), or an entry of ``BLOCK_CHECKS`` runs the block here (the
  team set-up: as written, against a real PostgreSQL, only the reader's own hosts replaced).
* an untagged block that draws a file tree (here or in ``DOCS_WITH_SNIPPETS``): every file
  and folder it names exists.

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
from importlib import resources
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
    page: str = "README.md"  # the page's path in the repository

    @property
    def label(self) -> str:
        return f"{self.page}:{self.line} ({self.lang or 'untagged'}, {self.section})"


def readme_blocks(text: str | None = None, page: str = "README.md") -> list[Block]:
    lines = ((REPO / page).read_text() if text is None else text).splitlines()
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
        blocks.append(Block(lang, body, start, heading, "\n".join(lines[end + 1:stop]), page))
    return blocks


BLOCKS = readme_blocks()
# Pages of docs/ whose Python snippets and file trees are held to the README's standard.
DOCS_WITH_SNIPPETS = ["docs/client.md", "docs/architecture.md"]
DOC_BLOCKS = [block for page in DOCS_WITH_SNIPPETS for block in readme_blocks(page=page)]


def _uses_the_sdk(block: Block) -> bool:
    """Run by tests/realpeer/test_readme_sdk.py, against the real codex, in the SDK's venv."""
    return "openai_codex" in block.text


def _page_blocks(block: Block) -> list[Block]:
    return BLOCKS if block.page == "README.md" else [b for b in DOC_BLOCKS if b.page == block.page]


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
    blocks = _page_blocks(block)
    position = blocks.index(block)
    following = blocks[position + 1] if position + 1 < len(blocks) else None
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


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS + DOC_BLOCKS if b.lang == "python" and not _uses_the_sdk(b)],
    ids=lambda b: f"{b.page}:{b.line}")
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


# Shell blocks a test here runs itself: a pattern the block contains, and the check, given
# the block, the test's request (for fixtures) and a sandbox directory. The README rewrite
# adds entries as it adds blocks.
BlockCheck = Callable[[Block, pytest.FixtureRequest, Path], None]


def _shell(script: str, env: dict[str, str], cwd: Path, stdin: str = "") -> str:
    """Run ``script`` with bash, stopping at the first failing command; its stdout."""
    result = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], input=stdin,
                            env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                            check=False, start_new_session=True)  # no terminal to prompt on
    assert result.returncode == 0, f"{script}\n{result.stdout}{result.stderr}"
    return result.stdout


def check_team_setup(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The team set-up, run as written against a real PostgreSQL, with only what names the
    reader's own machines replaced: the PostgreSQL admin (``sudo -u postgres``) reaches the
    test server through PG* variables, the collector listens on a free loopback port instead
    of 0.0.0.0:8419, and the developer's config names that address and the token printed by
    ``collect token add``. A proxy session in between (not in the block) gives ``stats``
    something to count."""
    from codex_rpc_analytics.examples.scripted_server import Script
    from tests.pgserver import PgServer, pg_bin_dir
    from tests.proxy.support import replay

    server: PgServer = request.getfixturevalue("pg_server")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = sandbox_env(tmp_path)
    for name in ("XDG_CONFIG_HOME", "CODEX_RPC_ANALYTICS_CONFIG"):
        env.pop(name, None)  # the block writes ~/.config/codex-rpc-analytics/config.toml
    env.update(HOME=str(home), PGHOST="127.0.0.1", PGPORT=str(server.port), PGUSER="postgres",
               PATH=os.pathsep.join([str(Path(sys.executable).parent), str(pg_bin_dir()),
                                     env["PATH"]]))
    lines = block.text.splitlines()
    first = next(i for i, line in enumerate(lines)
                 if line.startswith("codex-rpc-analytics collect --store"))
    last = first
    while lines[last].rstrip().endswith("\\"):
        last += 1
    stats = max(i for i, line in enumerate(lines) if line.startswith("codex-rpc-analytics stats"))
    sudo = 'sudo() { if [ "$1" = -u ]; then shift 2; fi; "$@"; }\n'
    try:
        printed = _shell(sudo + "\n".join(lines[:first]), env, work, stdin="PASSWORD\nPASSWORD\n")
        token = printed.split()[-1]
        assert token.startswith("cra_ingest_"), printed
        collect_line = " ".join(re.sub(r"\s+#.*$", "", line).rstrip("\\ ")
                                for line in lines[first:last + 1])
        assert "--listen 0.0.0.0:8419" in collect_line, collect_line
        collect_line = collect_line.replace("0.0.0.0:8419", "127.0.0.1:0")
        collector = subprocess.Popen(["bash", "-c", "exec " + collect_line], env=env, cwd=work,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        try:
            assert collector.stderr is not None
            announced = collector.stderr.readline()  # blocks until it listens (or exits)
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+/)", announced)
            assert match, announced + collector.stderr.read()
            middle = "\n".join(lines[last + 1:stats])
            assert "https://collector.example/" in middle and "cra_ingest_…" in middle
            _shell(middle.replace("https://collector.example/", match.group(1))
                   .replace("cra_ingest_…", token), env, work)
            # A developer's session through the proxy: its sinks come from that config.
            transcript = Path(str(resources.files("codex_rpc_analytics") / "examples"
                                  / "codex-0.169.0-session.rpc.jsonl"))
            session = subprocess.run(
                ["codex-rpc-analytics", "proxy", "--", sys.executable, "-m",
                 "codex_rpc_analytics.examples.scripted_server", str(transcript)],
                input=b"".join(line + b"\n" for line in Script.load(transcript).client_lines()),
                env=env, cwd=work, capture_output=True, timeout=60, check=False)
            assert session.returncode == 0, session.stderr
            flushed = _shell("codex-rpc-analytics flush", env, work)  # what the grace left
            summary = _shell("\n".join(lines[stats:]), env, work)
        finally:
            collector.terminate()
            collector.communicate(timeout=30)
    finally:
        _shell("psql -X -q -c 'DROP DATABASE IF EXISTS codex_analytics' "
               "-c 'DROP ROLE IF EXISTS codex'", env, work)
    events = len(replay(transcript))
    assert f"events: {events} (" in summary, flushed + summary
    assert "sources: team-berlin" in summary, summary


def _example_session() -> tuple[Path, bytes, bytes]:
    """The bundled recorded session: its path, what its client sends, what its server answers."""
    from codex_rpc_analytics.examples.scripted_server import Script

    transcript = Path(str(resources.files("codex_rpc_analytics") / "examples"
                          / "codex-0.169.0-session.rpc.jsonl"))
    script = Script.load(transcript)
    return (transcript, b"".join(line + b"\n" for line in script.client_lines()),
            b"".join(line + b"\n" for line in script.server_lines()))


def check_ide_wrapper(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The IDE wrapper, made as written in a throwaway HOME, then run as an IDE runs codex
    (``WRAPPER app-server``) with a stand-in ``codex`` on PATH: the scripted app-server playing
    the bundled session, which insists on being asked for ``app-server``. The IDE must see every
    answer byte for byte, and the proxy, told nothing but what the (empty) config file says,
    must have committed the session's events to the default outbox."""
    from tests.proxy.support import replay

    home = tmp_path / "home"
    home.mkdir()
    env = sandbox_env(tmp_path)
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "CODEX_RPC_ANALYTICS_CONFIG",
                 "CODEX_RPC_ANALYTICS_STATE_DIR"):
        env.pop(name, None)  # the wrapper passes no flags: the defaults under HOME apply
    env["HOME"] = str(home)
    _shell(block.text, env, tmp_path)
    transcript, client, server = _example_session()
    stand_in = tmp_path / "stand-in"
    stand_in.mkdir()
    codex = stand_in / "codex"
    codex.write_text(f'#!/bin/sh\n[ "$1" = app-server ] || exit 64\n'
                     f'exec "{sys.executable}" -m codex_rpc_analytics.examples.scripted_server '
                     f'"{transcript}"\n')
    codex.chmod(0o755)
    env["PATH"] = os.pathsep.join([str(stand_in), str(Path(sys.executable).parent), env["PATH"]])
    wrapper = home / ".local" / "bin" / "codex-with-analytics"
    session = subprocess.run([str(wrapper), "app-server"], input=client, env=env, cwd=tmp_path,
                             capture_output=True, timeout=60, check=False)
    assert session.returncode == 0, session.stderr
    assert session.stdout == server
    stored = _shell("codex-rpc-analytics events", env, tmp_path)
    assert stored.encode().splitlines() == replay(transcript)
    assert (home / ".local" / "state" / "codex-rpc-analytics").is_dir()


BLOCK_CHECKS: list[tuple[str, BlockCheck]] = [
    (r"codex-rpc-analytics collect token add", check_team_setup),
    (r"codex-with-analytics", check_ide_wrapper),
]


def _check_for(block: Block) -> BlockCheck | None:
    for pattern, check in BLOCK_CHECKS:
        if re.search(pattern, block.text):
            return check
    return None


SHELL_BLOCKS = [block for block in BLOCKS if block.lang in ("bash", "sh", "console")]


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: f"line{b.line}")
def test_shell_blocks_are_run_by_ci_or_here(block: Block, request: pytest.FixtureRequest,
                                            tmp_path: Path) -> None:
    if set(commands_of(block)) <= ci_commands():
        return  # .ci/run runs each command on a fresh clone, on a fresh machine
    check = _check_for(block)
    assert check is not None, (
        f"{block.label} is run by no test: put its commands in .ci/run or add a BLOCK_CHECKS "
        "entry")
    check(block, request, tmp_path)


# -- config files ------------------------------------------------------------------------------

@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "toml"],
                         ids=lambda b: f"line{b.line}")
def test_config_files_load_as_written(block: Block, tmp_path: Path) -> None:
    from codex_rpc_analytics.delivery.settings import load_settings

    config = tmp_path / "config.toml"
    config.write_text(block.text)
    settings = load_settings(config)  # raises ConfigError, naming the line, on a mistake
    urls = re.findall(r'^url = "([^"]+)"', block.text, flags=re.M)
    assert urls and len(settings.sinks) == len(urls), block.label
    assert settings.enabled == ("enabled = false" not in block.text)


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


@pytest.mark.parametrize("block", [b for b in BLOCKS + DOC_BLOCKS if _is_tree(b)],
                         ids=lambda b: f"{b.page}:{b.line}")
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
    if block.lang == "toml":
        return True  # loaded by test_config_files_load_as_written
    if block.lang == "text":
        blocks = _page_blocks(block)
        position = blocks.index(block)
        return position > 0 and blocks[position - 1].lang == "python" and (
            _printed_output(blocks[position - 1]) == block.text)
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
