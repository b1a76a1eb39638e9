"""Faults a black-box test found in the stdio proxy (issue 10), each as a user meets it: a
reader that goes away, Ctrl-C with grandchildren, a client that half-closes, a private
recording, and a session whose analytics have nowhere to go."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.delivery.support import free_port, write_chatgpt_auth
from tests.proxy.support import CLI, PYTHON, client_bytes, proxy, read_line, scripted
from tests.support import transcript

SESSION = "gating_g1_no_analytics_section"


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            # A zombie has exited; only its parent has not collected it yet.
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        select.select([], [], [], 0.01)  # poll the condition again shortly
    return True


def test_a_reader_that_goes_away_ends_the_child_with_sigpipe_as_without_the_proxy(
    tmp_path: Path,
) -> None:
    # `codex-rpc-analytics proxy -- yes | head -c 100`
    process = subprocess.Popen(proxy(tmp_path / "s", ["yes"]), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    assert len(process.stdout.read(100)) == 100
    process.stdout.close()  # head exits
    try:
        status = process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("the proxy kept draining `yes` after its reader went away")
    assert status == 128 + signal.SIGPIPE  # what `yes` itself dies of
    assert process.stderr is not None and process.stderr.read() == b""


GRANDPARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
try:
    child.wait()
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_ctrl_c_reaches_the_childs_whole_process_group(tmp_path: Path) -> None:
    process = subprocess.Popen(proxy(tmp_path / "s", [PYTHON, "-c", GRANDPARENT]),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    grandchild = int(process.stdout.readline())
    try:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 130
        assert _wait_gone(grandchild, 10), "the grandchild survived Ctrl-C, orphaned"
    finally:
        if not _gone(grandchild):
            with contextlib.suppress(ProcessLookupError):
                os.kill(grandchild, signal.SIGKILL)


def test_requests_read_before_a_half_close_are_all_answered_before_eof(tmp_path: Path) -> None:
    requests = (b'{"id":1,"method":"rpcAnalytics/status"}\n'
                b'{"id":null,"method":"rpcAnalytics/status"}\n'  # a notification: no answer
                b'{"id":"f","method":"rpcAnalytics/flush","params":{"timeoutMs":500}}\n'
                b'{"id":2,"method":"rpcAnalytics/status","params":[1]}')  # last, no newline
    result = subprocess.run(proxy(tmp_path / "s", ["cat"]), input=requests,
                            capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(str(a["id"]) for a in answers) == ["1", "2", "f"]
    assert result.stdout.endswith(b"\n") and b'"id":null' not in result.stdout
    assert result.stderr == b""


def test_a_recording_is_private_even_over_an_existing_readable_file(tmp_path: Path) -> None:
    recording = tmp_path / "session.rpc.jsonl"
    recording.write_text("an old recording\n")
    recording.chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        result = subprocess.run(
            proxy(tmp_path / "s", scripted(transcript(SESSION)), "--record", str(recording)),
            input=client_bytes(transcript(SESSION)), capture_output=True, timeout=60,
            check=False)
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(recording.stat().st_mode) == 0o600
    assert b"an old recording" not in recording.read_bytes()
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "s" / "outbox.sqlite3").stat().st_mode) == 0o600


@pytest.mark.parametrize("fault", ["collector unreachable", "outbox cannot be created"])
def test_with_nowhere_for_analytics_to_go_the_proxy_exits_right_after_its_child(
    tmp_path: Path, fault: str,
) -> None:
    state = tmp_path / "state"
    sink = f"http://127.0.0.1:{free_port()}/"  # nothing listens
    codex_home = tmp_path / "codex-home"
    write_chatgpt_auth(codex_home)  # a login, so that no version disables the sink for lack of it
    if fault == "outbox cannot be created":
        (tmp_path / "a-file").write_text("")
        state = tmp_path / "a-file" / "state"
    # A grace of an hour: a proxy that waited it out with nothing left to commit or send would
    # outlive the 60 s bound (TimeoutExpired fails the test instead of hanging it).
    result = subprocess.run(
        proxy(state, scripted(transcript(SESSION)), "--sink", sink, "--grace", "3600",
              "--codex-home", str(codex_home)),
        input=client_bytes(transcript(SESSION)), capture_output=True, timeout=60, check=False)
    assert result.returncode == 0


def test_replay_into_a_closed_pipe_is_not_an_error_of_the_transcript() -> None:
    many = [str(transcript("fakeauth_full_flow"))] * 200
    process = subprocess.Popen([*CLI, "replay", *many], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b'{"event_type":')
    process.stdout.close()  # `| head -1`
    status = process.wait(30)
    stderr = process.stderr.read()
    assert b"cannot read transcript" not in stderr and b"Broken pipe" not in stderr, stderr
    assert status == 128 + signal.SIGPIPE


STATUS = b'{"id":"s","method":"rpcAnalytics/status"}\n'


def _record_into(tmp_path: Path, target: Path, file_size_limit: int | None = None
                 ) -> tuple[int, bytes, dict[str, object]]:
    """A session recorded into ``target``, relayed byte for byte (checked against the scripted
    server without the proxy), then a status request: exit status, stderr, the status."""
    script = transcript("fakeauth_full_flow")
    direct = subprocess.run(scripted(script), input=client_bytes(script), capture_output=True,
                            timeout=60, check=True).stdout

    def limit_file_size() -> None:
        if file_size_limit is not None:  # writes past it fail with EFBIG (SIGXFSZ ignored)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    process = subprocess.Popen(
        proxy(tmp_path / "s", scripted(script), "--record", str(target)),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=limit_file_size)
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(client_bytes(script))
        process.stdin.flush()
        relayed = b"".join(read_line(process.stdout) for _ in range(direct.count(b"\n")))
        assert relayed == direct  # the relay went on, byte for byte
        process.stdin.write(STATUS)  # after the whole session: every line was recorded
        process.stdin.flush()
        status: dict[str, object] = json.loads(read_line(process.stdout))["result"]
        _stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr, status


def test_a_recording_on_a_full_disk_stops_with_one_line_and_the_session_goes_on(
        tmp_path: Path) -> None:
    returncode, stderr, status = _record_into(tmp_path, Path("/dev/full"))
    assert returncode == 0
    assert status["recording"] == {"path": "/dev/full", "lines": 0,
                                   "stopped": "No space left on device"}
    assert stderr.decode().splitlines() == [
        "codex-rpc-analytics: error: recording /dev/full stopped: No space left on device; the "
        "session goes on unrecorded (free some space or give --record a file on another disk)"]


def test_what_was_recorded_before_the_disk_filled_stays(tmp_path: Path) -> None:
    recording = tmp_path / "session.rpc.jsonl"
    limit = 20_000  # the session's recording is about twice that
    returncode, stderr, status = _record_into(tmp_path, recording, limit)
    assert returncode == 0
    recorded = status["recording"]
    assert isinstance(recorded, dict) and recorded["stopped"] == "File too large"
    # (The limit is the whole process's: the outbox fails too, and says so in its own line.)
    assert [line for line in stderr.decode().splitlines() if "recording" in line] == [
        f"codex-rpc-analytics: error: recording {recording} stopped: File too large; the "
        "session goes on unrecorded (free some space or give --record a file on another disk)"]
    data = recording.read_bytes()
    assert len(data) == limit  # everything up to the failure reached the file
    rows = [json.loads(line) for line in data.splitlines()[:-1]]  # the last is cut short
    assert rows[0]["dir"] == "meta" and len(rows) > 20
    assert recorded["lines"] <= len(rows) - 1  # the status counts only flushed lines
