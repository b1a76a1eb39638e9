"""The command line behaves the same way in every command (docs/cli.md): help, versions, exit
statuses (2 the command line is wrong, 1 the work failed), one-line errors, prefixed warnings,
-q/-v, and stdin for `replay -`. Each case runs the real program as a subprocess."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import recorded_events, transcript

PROG = "codex-rpc-analytics"
COMMANDS = ["example", "proxy", "replay", "flush", "requeue", "stats", "events", "collect",
            "report"]


def run_cli(*args: str, stdin: bytes = b"", state_dir: Path | None = None,
            cwd: Path | None = None, config: Path | None = None,
            ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if state_dir is not None:
        env["CODEX_RPC_ANALYTICS_STATE_DIR"] = str(state_dir)
    if config is not None:
        env["CODEX_RPC_ANALYTICS_CONFIG"] = str(config)
    result = subprocess.run([sys.executable, "-m", "codex_rpc_analytics", *args], input=stdin,
                            capture_output=True, timeout=60, check=False, env=env, cwd=cwd)
    return subprocess.CompletedProcess(result.args, result.returncode,
                                       result.stdout.decode(), result.stderr.decode())


def test_no_arguments_prints_the_help_on_stderr_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"usage: {PROG} ")
    assert all(f"    {command} " in result.stderr for command in COMMANDS)


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS), ["collect", "token"],
                                     ["collect", "token", "add"]])
def test_help_is_on_stdout_and_exits_0(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(f"usage: {' '.join([PROG, *command])}")
    assert "-q, --quiet" in result.stdout and "-v, --verbose" in result.stdout


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_is_the_installed_metadata_version(flag: str) -> None:
    result = run_cli(flag)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"{PROG} {importlib.metadata.version(PROG)}\n"


@pytest.mark.parametrize(("args", "help_of"), [
    (["--bogus"], PROG),
    (["--bogus", "replay", "x"], PROG),
    (["replay", "--bogus", "x"], f"{PROG} replay"),
    (["stats", "--bogus"], f"{PROG} stats"),
    (["proxy", "--bogus", "--", "cat"], f"{PROG} proxy"),
    (["events", "--state", "x"], f"{PROG} events"),  # no abbreviations of --state-dir
])
def test_an_unknown_flag_is_named_not_reported_as_a_missing_command(
    args: list[str], help_of: str
) -> None:
    result = run_cli(*args)
    assert result.returncode == 2 and result.stdout == ""
    flag = next(arg for arg in args if arg.startswith("--") and arg != "--")
    assert result.stderr == f"{PROG}: error: unknown flag {flag} (see '{help_of} --help')\n"


# The command line is wrong: exit 2, one line that names the --help of the command (its
# leading words in `args`, as many as the second item says).
USAGE_ERRORS = [
    (["no-such-command"], 0),
    (["example", "extra"], 1),
    (["proxy"], 1),
    (["proxy", "--redact", "--", "cat"], 1),
    (["proxy", "--grace", "soon", "--", "cat"], 1),
    (["proxy", "--sink", "codex", "--", "cat"], 1),
    (["replay"], 1),
    (["replay", "-", "-"], 1),
    (["replay", "--transport", "carrier-pigeon", "x"], 1),
    (["flush", "--timeout", "0"], 1),
    (["flush", "--sink", "ftp://example.invalid/"], 1),
    (["requeue", "extra"], 1),
    (["stats", "extra"], 1),
    (["events", "--since", "the day before"], 1),
    (["collect", "--listen", "nowhere"], 1),
    (["report", "--since", "the day before", "-o", "x.html"], 1),
    (["collect", "token"], 2),
    (["collect", "token", "add"], 3),
]


@pytest.mark.parametrize(("args", "words"), USAGE_ERRORS,
                         ids=[" ".join(args) for args, _ in USAGE_ERRORS])
def test_usage_errors_exit_2_with_one_line(args: list[str], words: int, tmp_path: Path) -> None:
    result = run_cli(*args, state_dir=tmp_path / "state")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"{PROG}: error: ")
    help_of = " ".join([PROG, *args[:words]])
    assert result.stderr.endswith(f"(see '{help_of} --help')\n"), result.stderr


def _corrupt_outbox(state_dir: Path) -> Path:
    state_dir.mkdir()
    (state_dir / "outbox.sqlite3").write_bytes(b"not a database " * 512)
    return state_dir


# The command line is right but the work fails: exit 1, one line.
@pytest.mark.parametrize("case", ["replay-missing", "replay-unreadable", "stats-corrupt",
                                  "events-corrupt", "proxy-record-unwritable"])
def test_failures_exit_1_with_one_line(case: str, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    args = {
        "replay-missing": ["replay", str(tmp_path / "session.rpc.jsonl")],
        # /proc/self/mem is a file that cannot be read from offset 0 (EIO), even as root.
        "replay-unreadable": ["replay", "/proc/self/mem"],
        "stats-corrupt": ["stats"],
        "events-corrupt": ["events"],
        "proxy-record-unwritable": ["proxy", "--record", str(tmp_path / "no" / "such.jsonl"),
                                    "--", "cat"],
    }[case]
    if case.endswith("-corrupt"):
        _corrupt_outbox(state_dir)
    result = run_cli(*args, state_dir=state_dir)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"{PROG}: error: ")
    assert "--help" not in result.stderr  # nothing to fix on the command line


def test_the_proxy_exits_with_its_childs_status_not_the_tools_convention(
    tmp_path: Path
) -> None:
    child = run_cli("proxy", "--", sys.executable, "-c", "raise SystemExit(3)",
                    state_dir=tmp_path / "state")
    assert (child.returncode, child.stderr) == (3, "")
    missing = run_cli("proxy", "--", str(tmp_path / "no-such-codex"), state_dir=tmp_path / "s")
    assert missing.returncode == 127 and missing.stderr.startswith(f"{PROG}: error: ")


def _damaged_transcript(tmp_path: Path) -> Path:
    rows = transcript("gating_g1_no_analytics_section").read_text().splitlines()
    rows.insert(3, '{"t": 0.1, "dir": "c2s"')  # truncated JSON: a warning, the rest replays
    damaged = tmp_path / "damaged.rpc.jsonl"
    damaged.write_text("\n".join(rows) + "\n")
    return damaged


def test_warnings_carry_the_program_name_and_minus_q_hides_them(tmp_path: Path) -> None:
    damaged = _damaged_transcript(tmp_path)
    expected = b"".join(line + b"\n" for line in recorded_events("gating_g1_no_analytics_section"))
    default = run_cli("replay", str(damaged))
    assert default.returncode == 0 and default.stdout.encode() == expected
    assert default.stderr.startswith(f"{PROG}: warning: {damaged}:4: corrupt transcript row")
    assert default.stderr.count("\n") == 1
    for quiet in (["-q", "replay", str(damaged)], ["replay", "--quiet", str(damaged)]):
        result = run_cli(*quiet)
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.encode() == expected


def test_minus_v_tells_more(tmp_path: Path) -> None:
    path = transcript("noauth_threads")
    quiet = run_cli("replay", str(path))
    verbose = run_cli("replay", "-v", str(path))
    assert quiet.stderr == ""
    assert verbose.stdout == quiet.stdout
    assert verbose.stderr == f"{PROG}: debug: replay: 2 events from {path}\n"
    stats = run_cli("-v", "stats", state_dir=tmp_path / "state")
    assert stats.stderr == f"{PROG}: debug: stats: state directory {tmp_path / 'state'}\n"


def test_minus_v_shows_what_each_sink_was_given(tmp_path: Path) -> None:
    """The proxy's stderr is shared with codex's: without -v it adds nothing on a good
    session; with -v it tells where events went, batch by batch, and what each sink holds at
    the end."""
    from codex_rpc_analytics.cli.example_command import example_transcript
    from codex_rpc_analytics.examples.scripted_server import Script

    session = example_transcript()
    client = b"".join(line + b"\n" for line in Script.load(session).client_lines())

    def proxy(*flags: str, name: str) -> subprocess.CompletedProcess[str]:
        sink = f"jsonl:{tmp_path / name / 'events.jsonl'}"
        return run_cli("proxy", *flags, "--state-dir", str(tmp_path / name), "--sink", sink,
                       "--", sys.executable, "-m",
                       "codex_rpc_analytics.examples.scripted_server", str(session),
                       stdin=client, config=tmp_path / "empty.toml")

    (tmp_path / "empty.toml").write_text("")
    default = proxy(name="default")
    assert (default.returncode, default.stderr) == (0, "")
    events = len((tmp_path / "default" / "events.jsonl").read_bytes().splitlines())
    assert events > 1
    verbose = proxy("-v", name="verbose")
    assert verbose.returncode == 0 and verbose.stdout == default.stdout
    sink = f"jsonl:{tmp_path / 'verbose' / 'events.jsonl'}"
    lines = verbose.stderr.splitlines()
    assert lines[0] == (f"{PROG}: debug: proxy: state directory {tmp_path / 'verbose'}, "
                        f"sinks: {sink}")
    delivered = [line for line in lines if line.startswith(f"{PROG}: debug: {sink}: delivered ")]
    assert sum(int(line.split()[4]) for line in delivered) == events
    assert f"{PROG}: debug: outbox {tmp_path / 'verbose'}: {events} events committed by this " \
           "process" in lines
    assert lines[-1] == (f"{PROG}: debug: {sink} at close: delivered {events}, pending 0, "
                         "rejected 0")


def test_replay_dash_reads_the_transcript_from_stdin(tmp_path: Path) -> None:
    path = transcript("fakeauth_full_flow")
    from_stdin = run_cli("replay", "-", stdin=path.read_bytes())
    assert (from_stdin.returncode, from_stdin.stderr) == (0, "")
    assert from_stdin.stdout == run_cli("replay", str(path)).stdout
    assert from_stdin.stdout.encode().splitlines()[:1] == recorded_events("fakeauth_full_flow")[:1]
    damaged = run_cli("replay", "-", stdin=_damaged_transcript(tmp_path).read_bytes())
    assert damaged.stderr.startswith(f"{PROG}: warning: <stdin>:4: corrupt transcript row")


def test_example_remark_is_hidden_by_minus_q() -> None:
    result = run_cli("example", "-q")
    assert result.returncode == 0 and result.stdout and result.stderr == ""


def test_example_minus_v_shows_what_its_proxy_did() -> None:
    result = run_cli("example", "-v")
    assert result.returncode == 0 and result.stdout
    assert f"{PROG}: debug: proxy: state directory " in result.stderr
    assert f"{PROG}: debug: outbox " in result.stderr
