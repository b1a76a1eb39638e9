"""`codex-rpc-analytics proxy` as an IDE runs it: a real subprocess around a real child, pipes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.proxy.support import (
    CLI,
    PYTHON,
    client_bytes,
    jsonl_events,
    mixed_session,
    proxy,
    read_line,
    replay,
    scripted,
)
from tests.support import recorded_events, transcript

THREAD_INITIALIZED = "codex_thread_initialized"


@dataclass
class Session:
    tmp: Path
    script: Path
    sent: bytes  # what the client wrote
    received: bytes  # what the client read
    server_received: bytes
    server_sent: bytes
    returncode: int
    stderr: bytes
    sink: Path
    recording: Path


def run_session(tmp: Path, *flags: str, sink: str | None = None,
                child_options: tuple[str, ...] = ()) -> Session:
    tmp.mkdir(parents=True, exist_ok=True)
    script = mixed_session(tmp / "mixed.rpc.jsonl")
    sink_path = tmp / "events.jsonl"
    recording = tmp / "live.rpc.jsonl"
    child = scripted(script, "--received", str(tmp / "server-received"),
                     "--sent", str(tmp / "server-sent"), *child_options)
    command = proxy(tmp / "state", child, "--sink", sink or f"jsonl:{sink_path}",
                    "--record", str(recording), *flags)
    sent = client_bytes(script)
    result = subprocess.run(command, input=sent, capture_output=True, timeout=60, check=False)
    return Session(tmp, script, sent, result.stdout, (tmp / "server-received").read_bytes(),
                   (tmp / "server-sent").read_bytes(), result.returncode, result.stderr,
                   sink_path, recording)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return run_session(tmp_path_factory.mktemp("live"))


@pytest.fixture(scope="module")
def redacted(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return run_session(tmp_path_factory.mktemp("redacted"), "--redact")


def test_every_byte_arrives_exactly_both_ways(live: Session) -> None:
    assert live.returncode == 0, live.stderr
    assert len(live.sent) > 3_000_000 and len(live.server_sent) > 3_000_000
    assert live.server_received == live.sent
    assert live.received == live.server_sent
    assert b"unexpected line" not in live.stderr  # the server saw every line it expected


def test_child_stderr_passes_through(tmp_path: Path) -> None:
    child = [PYTHON, "-c", "import sys; sys.stderr.write('from the child\\n')"]
    result = subprocess.run(proxy(tmp_path / "state", child), input=b"", capture_output=True,
                            timeout=30, check=False)
    assert result.returncode == 0
    assert result.stderr == b"from the child\n"


def test_sink_holds_the_recorded_thread_events_once_the_proxy_exited(live: Session) -> None:
    assert jsonl_events(live.sink, THREAD_INITIALIZED) == recorded_events(
        "fakeauth_full_flow", THREAD_INITIALIZED)


def test_recording_replays_to_the_live_events(live: Session) -> None:
    live_events = jsonl_events(live.sink)
    assert live_events and replay(live.recording) == live_events
    meta = json.loads(json.loads(live.recording.read_bytes().split(b"\n")[:-1][0])["raw"])
    assert meta["transport"] == "stdio" and meta["argv"][1:3] == ["-m",
                                                                  "codex_rpc_analytics.examples"
                                                                  ".scripted_server"]
    assert isinstance(meta["started_at"], float) and meta["redacted"] is False
    rows = [json.loads(text) for text in live.recording.read_bytes().split(b"\n")[:-1]]
    assert any("raw_b64" in row for row in rows)  # the invalid UTF-8 lines, exact
    assert json.loads(rows[-1]["raw"]) == {"exit_code": 0, "child_exited": True}


def test_redacted_recording_replays_to_the_same_events(live: Session, redacted: Session
                                                       ) -> None:
    assert redacted.returncode == 0
    assert redacted.received == redacted.server_sent  # redaction never touches the relay
    assert replay(redacted.recording) == jsonl_events(redacted.sink) == jsonl_events(live.sink)
    text = redacted.recording.read_text()
    for content in ("say ok", "ok from fake model", "AAAAAAAAAAAAAAAA", "/home/dev/project",
                    "this is not json"):
        assert content not in text
    assert "[redacted]" in text


def test_exit_status_is_the_childs(tmp_path: Path) -> None:
    script = transcript("noauth_initialize")
    result = subprocess.run(proxy(tmp_path / "s", scripted(script, "--exit-code", "3")),
                            input=b"", capture_output=True, timeout=30, check=False)
    assert result.returncode == 3


def test_a_child_killed_by_a_signal_gives_128_plus_n(tmp_path: Path) -> None:
    script = transcript("noauth_initialize")
    result = subprocess.run(proxy(tmp_path / "s", scripted(script, "--exit-signal", "9")),
                            input=b"", capture_output=True, timeout=30, check=False)
    assert result.returncode == 128 + 9


def test_a_missing_command_is_a_one_line_error_exit_127(tmp_path: Path) -> None:
    result = subprocess.run(proxy(tmp_path / "s", ["/no/such/codex", "app-server"]),
                            input=b"", capture_output=True, timeout=30, check=False)
    assert result.returncode == 127 and result.stdout == b""
    assert result.stderr.count(b"\n") == 1 and b"/no/such/codex" in result.stderr


def test_a_command_that_is_not_executable_exits_126(tmp_path: Path) -> None:
    path = tmp_path / "not-executable"
    path.write_text("#!/bin/sh\n")
    result = subprocess.run(proxy(tmp_path / "s", [str(path)]), input=b"",
                            capture_output=True, timeout=30, check=False)
    assert result.returncode == 126 and result.stderr.count(b"\n") == 1


@pytest.mark.parametrize("flags", [[], ["--sink", "-", "--", "cat"], ["--redact", "--", "cat"],
                                   ["--grace", "soon", "--", "cat"], ["--sink", "ftp://x",
                                                                      "--", "cat"]])
def test_bad_flags_are_one_line_errors_exit_2(flags: list[str], tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "proxy", *flags], input=b"", capture_output=True,
                            timeout=30, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count(b"\n") == 1, result.stderr


def test_the_relay_is_exact_when_the_sink_is_broken(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a path below a regular file can never be created, even by root
    session = run_session(tmp_path / "run", sink=f"jsonl:{blocker}/events.jsonl")
    assert session.returncode == 0
    assert session.server_received == session.sent
    assert session.received == session.server_sent


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _first_steps(process: subprocess.Popen[bytes], count: int = 2) -> None:
    """initialize and thread/start of fakeauth_full_flow, waiting for each answer."""
    from codex_rpc_analytics.examples.scripted_server import Script

    assert process.stdin is not None and process.stdout is not None
    script = Script.load(transcript("fakeauth_full_flow"))
    for line, replies in script.steps[:count + 1]:  # initialized has no reply
        process.stdin.write(line + b"\n")
        process.stdin.flush()
        for _ in replies:
            read_line(process.stdout)


def test_sigterm_is_forwarded_and_the_childs_status_returned(tmp_path: Path) -> None:
    child = scripted(transcript("fakeauth_full_flow"), "--on-sigterm", "exit:42")
    sink = tmp_path / "events.jsonl"
    process = _start(proxy(tmp_path / "s", child, "--sink", f"jsonl:{sink}"))
    _first_steps(process)
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None
    assert read_line(process.stdout) == b'{"method":"scripted/sigterm"}\n'
    assert process.stdout.read() == b""
    assert process.wait(10) == 42
    assert jsonl_events(sink, THREAD_INITIALIZED) == recorded_events(
        "fakeauth_full_flow", THREAD_INITIALIZED)[:1]


def _child_pid(process: subprocess.Popen[bytes]) -> int:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b'{"id":"s","method":"rpcAnalytics/status"}\n')
    process.stdin.flush()
    pid: int = json.loads(read_line(process.stdout))["result"]["proxy"]["child_pid"]
    return pid


def _gone(pid: int) -> bool:
    """The process no longer runs (a zombie nobody reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in state or "\nState:\tX" in state


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_child_that_outlives_the_grace_still_decides_the_exit_status(tmp_path: Path) -> None:
    """After SIGTERM the events are flushed within the grace, then the proxy keeps relaying
    and waits for its child, whose status it exits with: what the client would see without
    the proxy."""
    child = scripted(transcript("fakeauth_full_flow"), "--on-sigterm", "ignore")
    sink = tmp_path / "events.jsonl"
    process = _start(proxy(tmp_path / "s", child, "--sink", f"jsonl:{sink}", "--grace", "0.6"))
    assert process.stdin is not None and process.stdout is not None
    _first_steps(process)
    child_pid = _child_pid(process)
    try:
        process.send_signal(signal.SIGTERM)
        assert _wait_until(lambda: len(jsonl_events(sink, THREAD_INITIALIZED)) == 1, 0.6 + 0.4)
        time.sleep(0.6)  # well past the grace
        assert process.poll() is None and not _gone(child_pid)
        # Still relaying both ways: the next step of the session gets its answers.
        from codex_rpc_analytics.examples.scripted_server import Script

        line, replies = Script.load(transcript("fakeauth_full_flow")).steps[3]
        process.stdin.write(line + b"\n")
        process.stdin.flush()
        assert [read_line(process.stdout) for _ in replies] == [r + b"\n" for r in replies]
        os.kill(child_pid, signal.SIGKILL)
        assert process.wait(10) == 128 + signal.SIGKILL
        assert process.stdout.read() == b""
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, signal.SIGKILL)


SLOW_TO_STOP = """
import os, signal, sys, time
def on_term(signum, frame):
    time.sleep(1.2)
    sys.stdout.write("stopped\\n")
    sys.stdout.flush()
    os._exit(7)
signal.signal(signal.SIGTERM, on_term)
sys.stdout.write("ready\\n")
sys.stdout.flush()
time.sleep(60)
"""


def test_sigterm_exit_status_is_the_childs_even_after_the_grace(tmp_path: Path) -> None:
    process = _start(proxy(tmp_path / "s", [PYTHON, "-c", SLOW_TO_STOP], "--grace", "0.3"))
    assert process.stdout is not None
    assert read_line(process.stdout) == b"ready\n"
    process.send_signal(signal.SIGTERM)
    # The child writes this 1.2 s after the signal, past the 0.3 s grace: only a proxy still
    # relaying, and still waiting for its child, passes it on and exits with the child's 7.
    assert read_line(process.stdout) == b"stopped\n"
    assert process.stdout.read() == b""
    assert process.wait(10) == 7


def test_a_sigkilled_proxy_takes_its_child_with_it(tmp_path: Path) -> None:
    """An SDK SIGKILLs the proxy 2 s after SIGTERM: the child must not be orphaned."""
    child = [PYTHON, "-c", "import sys, time; print('ready', flush=True); time.sleep(60)"]
    process = _start(proxy(tmp_path / "s", child))
    assert process.stdout is not None
    assert read_line(process.stdout) == b"ready\n"
    child_pid = _child_pid(process)
    try:
        process.kill()  # no SIGTERM first: nothing forwards anything to the child
        process.wait(10)
        assert _wait_until(lambda: _gone(child_pid), 5.0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, signal.SIGKILL)


def test_client_stdout_closes_when_the_childs_stdout_ends(tmp_path: Path) -> None:
    # The child closes its stdout at once but keeps running until its stdin ends.
    child = [PYTHON, "-c", "import os, sys; os.close(1); sys.stdin.buffer.read(); sys.exit(5)"]
    process = _start(proxy(tmp_path / "s", child))
    assert process.stdin is not None and process.stdout is not None
    assert process.stdout.read() == b""  # EOF while the proxy and its child still run
    assert process.poll() is None
    process.stdin.close()
    assert process.wait(10) == 5


def test_extension_methods_are_answered_and_never_forwarded(tmp_path: Path) -> None:
    received = tmp_path / "server-received"
    script = transcript("fakeauth_full_flow")
    process = _start(proxy(tmp_path / "s", scripted(script, "--received", str(received))))
    assert process.stdin is not None and process.stdout is not None
    _first_steps(process)
    process.stdin.write(b'{"id":"st","method":"rpcAnalytics/status","params":{}}\n'
                        b'{"id":"fl","method":"rpcAnalytics/flush","params":{"timeoutMs":2000}}'
                        b"\n")
    process.stdin.flush()
    answers = {}
    for _ in range(2):
        answer = json.loads(read_line(process.stdout))
        answers[answer["id"]] = answer
    status = answers["st"]["result"]
    assert status["events"] == {"produced": 1, "by_type": {THREAD_INITIALIZED: 1}}
    assert status["relay"]["c2s"]["analytics_dropped_bytes"] == 0
    assert status["delivery"]["sinks"] == [] and status["proxy"]["transport"] == "stdio"
    assert answers["fl"]["result"]["complete"] is True
    process.stdin.close()
    assert process.stdout.read() == b""
    assert process.wait(10) == 0
    assert b"rpcAnalytics" not in received.read_bytes()
