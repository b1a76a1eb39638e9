"""Host side of a real-peer session: the spec, the result, and `run_session()`.

`run_session(spec)` writes `spec.json` into a work directory, runs `driver.py` inside a fresh
loopback-only network namespace (see `netns.py`), and reads back `result.json`:

    from tests.realpeer.session import SessionSpec, run_session   # or realpeer.session

    result = run_session(SessionSpec(command=[codex, "app-server"]))
    assert result.error is None
    bodies = [post["body"] for post in result.codex_posts()]   # byte-exact, in arrival order

The peer command is any argv (argv[0] absolute: it is started with the project directory as
cwd). These placeholders are replaced inside the namespace, where the values are known:
`{codex_home}`, `{project}`, `{workdir}`, `{backend_url}` (`http://127.0.0.1:PORT`),
`{backend_port}`, `{chatgpt_base_url}`. A session through the proxy is therefore

    SessionSpec(command=[f"{repo}/.venv/bin/codex-rpc-analytics", "proxy", "--sink",
                         "jsonl:{workdir}/proxy-events.jsonl", "--", codex, "app-server"])

with the proxy's output in `result.workdir / "proxy-events.jsonl"` afterwards. With
`client="openai-codex"` or `"codex-app-server-sdk"` (and `sdk_python`) the SDK spawns that same
command; `record_wire=True` puts wire_tap.py in front of it so that `result.transcript` holds the
wire in that case too.

From a shell (prints a summary, leaves the work directory):

    .venv/bin/python -m tests.realpeer.session [--client scripted|openai-codex|
        codex-app-server-sdk] [--workdir DIR] -- CMD [ARGS…]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .backend import CODEX_ANALYTICS_PATH
from .netns import netns_command

ClientKind = Literal["scripted", "openai-codex", "codex-app-server-sdk", "readme-snippet"]
Shutdown = Literal["eof+sigterm", "eof", "sigterm"]
Step = dict[str, Any]

TESTS_DIR = Path(__file__).resolve().parent.parent
ORIG_PYTHONPATH_ENV = "REALPEER_ORIG_PYTHONPATH"  # the caller's PYTHONPATH, restored for the peer

# The session of shared/fixtures/transcripts/fakeauth_full_flow.rpc.jsonl, step by step; codex
# posts the 7 events of real-codex-peer.md §4 for it. "$cwd" is the session's project directory;
# "save" names the thread id of the result, "thread" refers to such a name.
FULL_FLOW: tuple[Step, ...] = (
    {"op": "thread/start", "params": {"cwd": "$cwd"}, "save": "main"},
    {"op": "turn", "thread": "main", "text": "say ok"},
    {"op": "turn", "thread": "main", "text": "again"},
    {"op": "thread/resume", "thread": "main"},
    {"op": "thread/fork", "thread": "main", "save": "fork"},
    {"op": "turn", "thread": "fork", "text": "in fork"},
    {"op": "thread/start", "params": {}, "save": "second"},
)
EPHEMERAL_THREAD: Step = {"op": "thread/start", "params": {"ephemeral": True}, "save": "ephemeral"}
THREAD_START_ONLY: tuple[Step, ...] = ({"op": "thread/start", "params": {"cwd": "$cwd"}},)

# Ops after which codex posts exactly one analytics event (ChatGPT auth, analytics on).
EVENT_OPS = frozenset({"thread/start", "thread/resume", "thread/fork", "turn"})
# What the SDK scripts do: start, turn, resume, fork, turn on the fork, ephemeral start. The
# official SDK posts one event for each (6). codex-app-server-sdk's `chat_once` sends a
# `thread/resume` before every `turn/start`: before the first turn codex refuses it (no rollout
# yet, no event), on the fork it succeeds and posts a `resumed` event, and the fork's turn event
# then says `initialization_mode: "resumed"` (7).
# The README's snippet does not wait for codex's own posts: 0.
SDK_SESSION_POSTS = {"openai-codex": 6, "codex-app-server-sdk": 7, "readme-snippet": 0}
# The official SDK's session with approval_mode "auto_review": codex also starts a guardian
# reviewer thread, with its own codex_thread_initialized, for each of the three thread/start and
# thread/fork requests (6 + 3).
AUTO_REVIEW_POSTS = 9


@dataclass
class SessionSpec:
    """Everything the driver needs; JSON-serialisable."""

    command: list[str]
    client: ClientKind = "scripted"
    steps: list[Step] | None = None  # scripted client; None → FULL_FLOW
    client_name: str | None = None  # None → "probe" (scripted) or the SDK's own default
    client_title: str = "Probe"
    client_version: str = "0.0.1"
    experimental_api: bool = True
    auth: Literal["chatgpt", "apikey", "none"] = "chatgpt"
    analytics_enabled: bool | None = True
    otel_metrics_off: bool = True  # see codex_home.HomeOptions; False → config of §3.1 verbatim
    expected_posts: int | None = None  # None → derived from steps / the SDK session
    sdk_python: str | None = None
    # SDK clients own the pipes; record_wire puts wire_tap.py in front of the command so that
    # `transcript` still holds the wire (one more process between the SDK and the command).
    record_wire: bool = False
    sdk_options: dict[str, Any] = field(default_factory=dict)  # e.g. {"approval_mode": …}
    env: dict[str, str] = field(default_factory=dict)  # extra env for the peer (placeholders ok)
    # HOME={workdir}/home for the peer: codex runs the user's shell to snapshot its environment,
    # and a ~/.bashrc with `pyenv init` then starts `pyenv rehash`, which the namespace teardown
    # kills while it holds ~/.pyenv/shims/.pyenv-shim (a stale lock that blocks pyenv later).
    isolate_home: bool = True
    # False: network namespace only (see netns.netns_command): needed for sandboxed tool calls.
    pid_namespace: bool = True
    shutdown: Shutdown = "eof+sigterm"
    step_timeout_s: float = 30.0
    events_timeout_s: float = 20.0
    exit_timeout_s: float = 10.0
    sdk_timeout_s: float = 120.0
    workdir: str | None = None
    # What the model answers per scenario marker (model_script.py); None → the fake stream.
    model_script: dict[str, list[dict[str, Any]]] | None = None
    log_model_requests: bool = False  # write each Responses request body to model-requests.jsonl
    # Extra config.toml (codex_home.HomeOptions): lines before the first table, lines of the
    # provider table, and tables at the end; placeholders as in `command`.
    config_top_level: list[str] = field(default_factory=list)
    config_provider: list[str] = field(default_factory=list)
    config_tables: str = ""
    # Answers to server→client requests by method (a JSON-RPC result); others get an error.
    server_replies: dict[str, Any] = field(default_factory=dict)
    # The same per thread: {thread variable name: {method: result}}, checked first.
    server_replies_by_thread: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The backend's answer to a token refresh (set CODEX_REFRESH_TOKEN_URL_OVERRIDE to
    # "{backend_url}/oauth/token" in `env`); None → 404.
    refresh_reply: dict[str, Any] | None = None

    def effective_steps(self) -> list[Step]:
        return list(self.steps) if self.steps is not None else list(FULL_FLOW)

    def analytics_expected(self) -> bool:
        return self.auth == "chatgpt" and self.analytics_enabled is not False

    def effective_expected_posts(self) -> int:
        if self.expected_posts is not None:
            return self.expected_posts
        if not self.analytics_expected():
            return 0
        if self.client != "scripted":
            return SDK_SESSION_POSTS[self.client]
        return sum(1 for step in self.effective_steps() if step["op"] in EVENT_OPS)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SessionSpec:
        return cls(**json.loads(text))


@dataclass
class SessionResult:
    """What `driver.py` wrote to result.json (no token or account id in it)."""

    raw: dict[str, Any]
    workdir: Path

    @property
    def error(self) -> str | None:
        return self.raw.get("error")

    @property
    def analytics(self) -> list[dict[str, Any]]:
        """Every analytics POST: path, masked headers, byte-exact body, header checks."""
        return list(self.raw.get("analytics", []))

    def codex_posts(self) -> list[dict[str, Any]]:
        """The POSTs codex itself sent (to the configured chatgpt_base_url)."""
        return [p for p in self.analytics if p["path"] == CODEX_ANALYTICS_PATH]

    def codex_events(self) -> list[dict[str, Any]]:
        return [ev for p in self.codex_posts() for ev in json.loads(p["body"])["events"]]

    @property
    def transcript(self) -> list[dict[str, Any]]:
        return list(self.raw.get("transcript", []))

    @property
    def peer_exit_code(self) -> int | None:
        return self.raw.get("peer_exit_code")

    @property
    def timings(self) -> dict[str, float]:
        return dict(self.raw.get("timings", {}))

    @property
    def sdk(self) -> dict[str, Any]:
        return dict(self.raw.get("sdk") or {})

    @property
    def leftover_processes(self) -> list[dict[str, Any]]:
        return list(self.raw.get("leftover_processes", []))

    def transcript_jsonl(self) -> str:
        """The transcript in the fixtures' `*.rpc.jsonl` format."""
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in self.transcript)


class SessionFailed(RuntimeError):
    pass


def driver_argv(spec_path: Path) -> list[str]:
    return [sys.executable, "-m", "realpeer.driver", str(spec_path)]


def run_session(spec: SessionSpec, *, timeout: float | None = None) -> SessionResult:
    """Run one session in a fresh namespace; raise SessionFailed if the driver itself failed."""
    workdir = Path(spec.workdir or tempfile.mkdtemp(prefix="realpeer-"))
    workdir.mkdir(parents=True, exist_ok=True)
    spec = dataclasses.replace(spec, workdir=str(workdir))
    spec_path = workdir / "spec.json"
    spec_path.write_text(spec.to_json())
    result_path = workdir / "result.json"
    result_path.unlink(missing_ok=True)
    env = dict(os.environ)
    env[ORIG_PYTHONPATH_ENV] = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    if timeout is None:
        timeout = spec.sdk_timeout_s + spec.events_timeout_s + spec.exit_timeout_s + 60
        if spec.client == "scripted":
            steps = len(spec.effective_steps()) + 1
            timeout = steps * spec.step_timeout_s + spec.events_timeout_s + spec.exit_timeout_s + 30
    started = time.monotonic()
    with open(workdir / "driver.log", "wb") as log:
        # Its own process group: without a pid namespace, a timeout must still take down the
        # driver and everything it started.
        proc = subprocess.Popen(
            netns_command(driver_argv(spec_path), spec.pid_namespace),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
            start_new_session=True,
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise SessionFailed(
                f"driver timed out after {timeout:.0f} s; see {workdir / 'driver.log'}"
            ) from exc
    if not result_path.is_file():
        tail = (workdir / "driver.log").read_text(errors="replace").strip().splitlines()[-5:]
        raise SessionFailed(
            f"driver exited {proc.returncode} without a result: {' | '.join(tail)[:500]}"
        )
    result = SessionResult(json.loads(result_path.read_text()), workdir)
    result.raw.setdefault("timings", {})["host_total"] = round(time.monotonic() - started, 4)
    return result


def _summary(result: SessionResult) -> str:
    lines = [f"workdir: {result.workdir}", f"error: {result.error}"]
    lines.append(f"peer exit code: {result.peer_exit_code}")
    for post in result.codex_posts():
        events = json.loads(post["body"])["events"]
        for ev in events:
            params = ev.get("event_params", {})
            detail = params.get("initialization_mode"), params.get("is_first_turn")
            lines.append(f"  {ev.get('event_type')} {detail}")
    lines.append(f"other analytics POSTs: {len(result.analytics) - len(result.codex_posts())}")
    lines.append("timings: " + json.dumps(result.timings))
    if result.leftover_processes:
        lines.append(f"leftover processes: {result.leftover_processes}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one real-codex session in a netns.")
    parser.add_argument(
        "--client", default="scripted", choices=["scripted", "openai-codex", "codex-app-server-sdk"]
    )
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--auth", default="chatgpt", choices=["chatgpt", "apikey", "none"])
    parser.add_argument("--analytics", default="on", choices=["on", "off", "absent"])
    parser.add_argument(
        "--shutdown", default="eof+sigterm", choices=["eof+sigterm", "eof", "sigterm"]
    )
    parser.add_argument(
        "--ephemeral", action="store_true", help="scripted: add an ephemeral thread"
    )
    parser.add_argument("command", nargs="+", help="peer argv (after --)")
    args = parser.parse_args(argv)
    sdk_python = None
    if args.client != "scripted":
        from .peer_install import install_sdk_venv

        sdk_python = str(install_sdk_venv())
    steps = [*FULL_FLOW, EPHEMERAL_THREAD] if args.ephemeral else None
    spec = SessionSpec(
        command=list(args.command),
        client=args.client,
        steps=steps,
        auth=args.auth,
        analytics_enabled={"on": True, "off": False, "absent": None}[args.analytics],
        sdk_python=sdk_python,
        shutdown=args.shutdown,
        workdir=args.workdir,
    )
    result = run_session(spec)
    print(_summary(result))
    return 0 if result.error is None else 1


if __name__ == "__main__":
    sys.exit(main())
