"""One real-peer session, run *inside* the loopback-only namespace (see session.run_session).

    python -m realpeer.driver SPEC.json          (PYTHONPATH=tests, under netns.netns_command)

1. starts the fake backend on 127.0.0.1 (backend.py) and writes CODEX_HOME (codex_home.py);
2. runs the session with the client of `spec.client` against `spec.command` (codex itself or a
   wrapper such as the project's proxy, placeholders filled in):
   * `scripted`: this module speaks newline-delimited JSON-RPC over the child's stdin/stdout,
     records every line as `{t, dir, raw}` rows (the fixtures' `*.rpc.jsonl` format) and answers
     each server→client request with a JSON-RPC error so that no turn can hang;
   * `openai-codex` / `codex-app-server-sdk`: runs `sdk_sessions/<kind>.py` in the SDK venv; that
     process spawns the command itself;
3. waits — on backend arrivals, never on a clock — until codex posted the expected number of
   analytics events, then ends the session (close stdin and SIGTERM by default);
4. kills whatever is left in the namespace and writes `result.json` beside the spec.

Secrets (tokens, the made-up account id) are replaced by `***` in everything written.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backend import CODEX_ANALYTICS_PATH, CONTROL_PATH, AnalyticsPost, FakeBackend
from .codex_home import CodexHome, HomeOptions, build_codex_home
from .model_script import ModelScript
from .session import ORIG_PYTHONPATH_ENV, SessionSpec, Step

WIRE_TAP = Path(__file__).resolve().parent / "wire_tap.py"
SDK_SCRIPTS = {
    "openai-codex": Path(__file__).resolve().parent / "sdk_sessions" / "openai_codex_session.py",
    "codex-app-server-sdk": Path(__file__).resolve().parent
    / "sdk_sessions"
    / "app_server_sdk_session.py",
    # A README snippet, as written (sdk_options["snippet"]): tests/realpeer/test_readme_sdk.py.
    "readme-snippet": Path(__file__).resolve().parent / "sdk_sessions" / "readme_snippet.py",
}
STREAM_LIMIT = 1 << 30  # codex lines can be tens of MB (app-server-protocol.md §2.1)


class PeerClosed(RuntimeError):
    pass


class RpcError(RuntimeError):
    def __init__(self, method: str, error: Any) -> None:
        super().__init__(f"{method} failed: {json.dumps(error)[:300]}")
        self.error = error


@dataclass
class Transcript:
    t0: float = field(default_factory=time.monotonic)
    rows: list[dict[str, Any]] = field(default_factory=list)

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, direction: str, raw: str) -> None:
        self.rows.append({"t": round(self.now(), 4), "dir": direction, "raw": raw})

    def meta(self, **values: Any) -> None:
        self.add("meta", json.dumps(values))


# ------------------------------------------------------------------------------------------------
# The scripted JSON-RPC client


class RpcPeer:
    """Newline-delimited JSON-RPC over a child's pipes, with every line recorded."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        transcript: Transcript,
        server_replies: dict[str, Any] | None = None,
        by_thread: dict[str, dict[str, Any]] | None = None,
        variables: dict[str, str] | None = None,
    ) -> None:
        self.proc = proc
        self.transcript = transcript
        self.server_replies = dict(server_replies or {})
        self.by_thread = dict(by_thread or {})
        self.variables = variables if variables is not None else {}
        self.notifications: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        self.closed = False
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Condition()
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    async def _write(self, message: dict[str, Any]) -> None:
        raw = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        assert self.proc.stdin is not None
        self.transcript.add("c2s", raw)
        self.proc.stdin.write(raw.encode() + b"\n")
        await self.proc.stdin.drain()

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                raw = line.rstrip(b"\n").decode("utf-8", errors="replace")
                self.transcript.add("s2c", raw)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    await self._dispatch(message)
        finally:
            self.closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(PeerClosed("peer closed stdout"))
            async with self._changed:
                self._changed.notify_all()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.transcript.add("stderr", line.rstrip(b"\n").decode("utf-8", errors="replace"))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:
            # A server→client request (approval, tool call, …): answered as the spec says, else
            # refused, so that the turn goes on either way.
            self.server_requests.append({"method": message["method"], "id": message["id"]})
            answer: dict[str, Any] = {"id": message["id"]}
            replies = self._replies_for((message.get("params") or {}).get("threadId"))
            if message["method"] in replies:
                answer["result"] = replies[message["method"]]
            else:
                answer["error"] = {"code": -32601, "message": "not handled"}
            with contextlib.suppress(ConnectionError):
                await self._write(answer)
        elif "method" in message:
            self.notifications.append(message)
        elif "id" in message:
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message)
        async with self._changed:
            self._changed.notify_all()

    def _replies_for(self, thread_id: Any) -> dict[str, Any]:
        for name, replies in self.by_thread.items():
            if thread_id is not None and self.variables.get(name) == thread_id:
                return {**self.server_replies, **replies}
        return self.server_replies

    async def request(self, method: str, params: dict[str, Any], timeout: float) -> Any:
        if self.closed:
            raise PeerClosed(f"peer closed before {method}")
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        await self._write({"id": request_id, "method": method, "params": params})
        try:
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"no reply to {method} within {timeout} s") from exc
        if "error" in reply:
            raise RpcError(method, reply["error"])
        return reply.get("result")

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"method": method}
        if params is not None:
            message["params"] = params
        await self._write(message)

    async def wait_notification(
        self, method: str, match: dict[str, Any], start: int, timeout: float, count: int = 1
    ) -> dict[str, Any]:
        """The `count`-th notification `method` at index ≥ `start` whose params contain
        `match`."""

        def find() -> dict[str, Any] | None:
            seen = 0
            for note in self.notifications[start:]:
                params = note.get("params") or {}
                if note.get("method") == method and _contains(params, match):
                    seen += 1
                    if seen == count:
                        return note
            return None

        async def wait() -> dict[str, Any]:
            async with self._changed:
                while (found := find()) is None:
                    if self.closed:
                        raise PeerClosed(f"peer closed while waiting for {method}")
                    await self._changed.wait()
                return found

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"no {method} {match} within {timeout} s") from exc

    async def drain(self, timeout: float) -> None:
        """Wait for both readers to hit EOF (a grandchild may hold the pipes: bounded)."""
        _done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()


def _contains(params: dict[str, Any], match: dict[str, Any]) -> bool:
    for key, want in match.items():
        value = params.get(key)
        if isinstance(want, dict):
            if not isinstance(value, dict) or not _contains(value, want):
                return False
        elif value != want:
            return False
    return True


def _fill_params(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return variables.get(value[1:], value)
    if isinstance(value, dict):
        return {k: _fill_params(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_params(v, variables) for v in value]
    return value


@dataclass
class Outcome:
    """What a client run produced, besides the backend's records."""

    transcript: Transcript
    peer_exit_code: int | None = None
    peer_killed: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    visible_thread_ids: set[str] = field(default_factory=set)
    server_requests: list[dict[str, Any]] = field(default_factory=list)
    sdk: dict[str, Any] | None = None
    sdk_log: list[dict[str, Any]] = field(default_factory=list)  # the SDK process's own output
    sdk_exit_code: int | None = None
    events_reached: bool | None = None
    error: str | None = None


async def run_scripted(
    spec: SessionSpec, argv: list[str], env: dict[str, str], project: Path, ctx: Context
) -> Outcome:
    transcript = Transcript()
    out = Outcome(transcript)
    transcript.meta(argv=argv, CODEX_HOME=env["CODEX_HOME"], cwd=str(project))
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=project,
        limit=STREAM_LIMIT,
    )
    transcript.meta(pid=proc.pid)
    variables = {"cwd": str(project)}
    peer = RpcPeer(proc, transcript, spec.server_replies, spec.server_replies_by_thread,
                   variables)
    timeout = spec.step_timeout_s
    try:
        started = time.monotonic()
        client_info = {
            "name": spec.client_name or "probe",
            "title": spec.client_title,
            "version": spec.client_version,
        }
        params: dict[str, Any] = {"clientInfo": client_info}
        if spec.experimental_api:
            params["capabilities"] = {"experimentalApi": True}
        await peer.request("initialize", params, timeout)
        out.timings["0:initialize"] = round(time.monotonic() - started, 4)
        await peer.notify("initialized")
        for index, step in enumerate(spec.effective_steps(), start=1):
            record = await _run_step(peer, step, variables, timeout, out, ctx)
            out.timings[f"{index}:{step['op']}"] = record["elapsed_s"]
            out.steps.append(record)
        out.events_reached = await ctx.wait_for_codex_posts(spec, out)
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        out.server_requests = peer.server_requests
        await _shutdown(spec, proc, peer, out)
    return out


async def _run_step(
    peer: RpcPeer,
    step: Step,
    variables: dict[str, str],
    timeout: float,
    out: Outcome,
    ctx: Context,
) -> dict[str, Any]:
    """One scripted step. Ops: `turn` (turn/start, then wait for its turn/completed unless
    `"wait": false`; `save_turn` names its id), `wait_turn`, `wait_notification`, `wait_hold`
    (the model backend holds a reply named so), `release` (let it go on), and any other op is
    a request named by `method` (default: the op) whose error is recorded, not raised, when
    `expect_error` is set. Strings "$name" in params are saved thread/turn ids or `cwd`."""
    op = step["op"]
    started = time.monotonic()
    record: dict[str, Any] = {"op": op}
    if "scenario" in step:
        record["scenario"] = step["scenario"]
    if op == "turn":
        thread_id = variables[step["thread"]]
        mark = len(peer.notifications)
        params: dict[str, Any] = {"threadId": thread_id,
                                  "input": [{"type": "text", "text": step.get("text", "")}]}
        params.update(_fill_params(step.get("params", {}), variables))
        try:
            result = await peer.request("turn/start", params, timeout)
        except RpcError as exc:
            if not step.get("expect_error"):
                raise
            record.update(thread_id=thread_id, error=exc.error)
            record["elapsed_s"] = round(time.monotonic() - started, 4)
            return record
        turn_id = result["turn"]["id"]
        record.update(thread_id=thread_id, turn_id=turn_id)
        if "save_turn" in step:
            variables[step["save_turn"]] = turn_id
            variables["mark:" + step["save_turn"]] = str(mark)
        if step.get("wait", True):
            done = await peer.wait_notification(
                "turn/completed", {"threadId": thread_id, "turn": {"id": turn_id}}, mark, timeout
            )
            record["status"] = done["params"]["turn"]["status"]
    elif op == "wait_turn":
        turn_id = variables[step["turn"]]
        mark = int(variables.get("mark:" + step["turn"], "0"))
        done = await peer.wait_notification("turn/completed", {"turn": {"id": turn_id}}, mark,
                                            timeout)
        record.update(turn_id=turn_id, status=done["params"]["turn"]["status"])
    elif op == "wait_notification":
        match = _fill_params(step.get("match", {}), variables)
        mark = int(variables.get("mark:" + step["turn"], "0")) if "turn" in step else 0
        if "since" in step:
            mark = int(variables["mark:" + step["since"]])
        note = await peer.wait_notification(step["method"], match, mark, timeout,
                                            int(step.get("count", 1)))
        turn = (note.get("params") or {}).get("turn")
        if "save_turn" in step and isinstance(turn, dict):
            variables[step["save_turn"]] = turn["id"]
            variables["mark:" + step["save_turn"]] = str(mark)
    elif op == "mark":
        variables["mark:" + step["name"]] = str(len(peer.notifications))
    elif op == "wait_hold":
        name = step["name"]
        if not await ctx.backend.wait_until(lambda: name in ctx.backend.holds_reached, timeout):
            raise TimeoutError(f"the model never reached hold {name!r}")
    elif op == "release":
        ctx.backend.release(step["name"])
    else:
        method = str(step.get("method", op))
        params = _fill_params(step.get("params", {}), variables)
        if "thread" in step:
            params = {"threadId": variables[step["thread"]], **params}
        try:
            result = await peer.request(method, params, timeout)
        except RpcError as exc:
            if not step.get("expect_error"):
                raise
            record.update(error=exc.error)
            result = None
        thread = (result or {}).get("thread") if isinstance(result, dict) else None
        if isinstance(thread, dict) and isinstance(thread.get("id"), str):
            record["thread_id"] = thread["id"]
            record["created_at"] = thread.get("createdAt")
            out.visible_thread_ids.add(thread["id"])
            if "save" in step:
                variables[step["save"]] = thread["id"]
        turn = (result or {}).get("turn") if isinstance(result, dict) else None
        if isinstance(turn, dict) and isinstance(turn.get("id"), str) and "save_turn" in step:
            variables[step["save_turn"]] = turn["id"]
        if "result_keys" in step and isinstance(result, dict):
            record["result"] = {k: result.get(k) for k in step["result_keys"]}
    record["elapsed_s"] = round(time.monotonic() - started, 4)
    return record


async def _shutdown(
    spec: SessionSpec, proc: asyncio.subprocess.Process, peer: RpcPeer, out: Outcome
) -> None:
    transcript = out.transcript
    started = time.monotonic()
    if spec.shutdown in ("eof+sigterm", "eof") and proc.stdin is not None:
        transcript.meta(closing_stdin=True)
        proc.stdin.close()
    if spec.shutdown in ("eof+sigterm", "sigterm") and proc.returncode is None:
        transcript.meta(sigterm=True)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), spec.exit_timeout_s)
    except TimeoutError:
        out.peer_killed = True
        transcript.meta(sigkill=True)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    out.timings["shutdown_to_exit"] = round(time.monotonic() - started, 4)
    await peer.drain(timeout=2.0)
    out.peer_exit_code = proc.returncode
    transcript.meta(exit_code=proc.returncode, timings_s=out.timings)


# ------------------------------------------------------------------------------------------------
# The SDK clients (each in its own process, in the 3.12 venv)


async def run_sdk(
    spec: SessionSpec, argv: list[str], env: dict[str, str], project: Path, ctx: Context
) -> Outcome:
    transcript = Transcript()
    out = Outcome(transcript)
    if not spec.sdk_python:
        out.error = f"client {spec.client} needs spec.sdk_python"
        return out
    workdir = Path(spec.workdir or ".")
    sdk_spec_path = workdir / "sdk-spec.json"
    sdk_result_path = workdir / "sdk-result.json"
    sdk_result_path.unlink(missing_ok=True)
    wire_path = workdir / "wire.jsonl"
    command = argv
    if spec.record_wire:
        command = [sys.executable, str(WIRE_TAP), str(wire_path), "--", *argv]
    sdk_spec = {
        "command": command,
        "options": spec.sdk_options,
        "env": ctx.env_overrides,  # the SDKs merge these over the environment they inherit
        "cwd": str(project),
        "client_name": spec.client_name,
        "control_url": f"{ctx.backend.url}{CONTROL_PATH}",
        "expected_posts": spec.effective_expected_posts(),
        "events_timeout_s": spec.events_timeout_s,
        "step_timeout_s": spec.step_timeout_s,
        "result_path": str(sdk_result_path),
    }
    sdk_spec_path.write_text(json.dumps(sdk_spec, indent=2))
    sdk_argv = [spec.sdk_python, str(SDK_SCRIPTS[spec.client]), str(sdk_spec_path)]
    transcript.meta(argv=argv, sdk_argv=sdk_argv, CODEX_HOME=env["CODEX_HOME"], cwd=str(project))
    # The SDK scripts import their sibling `_common.py`, so their own directory must stay on
    # sys.path (tests/conftest.py sets PYTHONSAFEPATH for children of the test session).
    env = {key: value for key, value in env.items() if key != "PYTHONSAFEPATH"}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *sdk_argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=project,
        limit=STREAM_LIMIT,
    )

    async def pump(stream: asyncio.StreamReader | None, direction: str) -> None:
        assert stream is not None
        while line := await stream.readline():
            transcript.add(direction, line.rstrip(b"\n").decode("utf-8", errors="replace"))

    pumps = [
        asyncio.create_task(pump(proc.stdout, "sdk-stdout")),
        asyncio.create_task(pump(proc.stderr, "sdk-stderr")),
    ]
    try:
        await asyncio.wait_for(proc.wait(), spec.sdk_timeout_s)
    except TimeoutError:
        out.error = f"SDK session did not finish within {spec.sdk_timeout_s} s"
        proc.kill()
        await proc.wait()
    _done, pending = await asyncio.wait(pumps, timeout=2.0)
    for task in pending:
        task.cancel()
    out.timings["sdk_process"] = round(time.monotonic() - started, 4)
    out.sdk_exit_code = proc.returncode
    if sdk_result_path.is_file():
        out.sdk = json.loads(sdk_result_path.read_text())
        out.peer_exit_code = out.sdk.get("peer_exit_code")
        out.visible_thread_ids = set(out.sdk.get("thread_ids", []))
        out.events_reached = out.sdk.get("events_reached")
        out.timings.update(out.sdk.get("timings", {}))
        if out.sdk.get("error") and out.error is None:
            out.error = f"SDK session: {out.sdk['error']}"
    elif out.error is None:
        out.error = f"SDK session exited {proc.returncode} without a result"
    transcript.meta(sdk_exit_code=proc.returncode, timings_s=out.timings)
    out.sdk_log = transcript.rows
    if spec.record_wire and wire_path.is_file():
        rows = [json.loads(line) for line in wire_path.read_text().splitlines() if line.strip()]
        out.transcript = Transcript(rows=rows)
        exits = [
            json.loads(r["raw"]) for r in rows if r["dir"] == "meta" and "exit_code" in r["raw"]
        ]
        if exits:
            out.peer_exit_code = exits[-1]["exit_code"]  # the command's own, not the tap's
    else:
        out.transcript = Transcript()
    return out


# ------------------------------------------------------------------------------------------------
# The session as a whole


@dataclass
class Context:
    backend: FakeBackend
    home: CodexHome
    t0: float
    env_overrides: dict[str, str]

    async def wait_for_codex_posts(self, spec: SessionSpec, out: Outcome) -> bool:
        expected = spec.effective_expected_posts()
        started = time.monotonic()
        try:
            await self.backend.wait_for_posts(expected, spec.events_timeout_s)
            reached = True
        except TimeoutError as exc:
            out.error = out.error or f"TimeoutError: {exc}"
            reached = False
        out.timings["events_wait"] = round(time.monotonic() - started, 4)
        return reached


def fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _namespace_leftovers() -> list[dict[str, Any]]:
    """Processes still alive in this network namespace, other than the driver; SIGKILLed."""
    # Same network *and* pid namespace: `unshare` itself sits in the new network namespace
    # but in the parent pid namespace, and must not be touched.
    own = [os.readlink(f"/proc/self/ns/{ns}") for ns in ("net", "pid")]
    own_pid = os.readlink("/proc/self")
    leftovers: list[dict[str, Any]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == own_pid:
            continue
        try:
            if [os.readlink(entry / "ns" / ns) for ns in ("net", "pid")] != own:
                continue
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("State", "").startswith("Z"):
            continue
        pid_here = int(fields.get("NSpid", entry.name).split()[-1])  # pid in our pid namespace
        argv = [part.decode(errors="replace") for part in cmdline if part]
        leftovers.append({"pid": pid_here, "argv": argv[:4]})
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid_here, signal.SIGKILL)
    return leftovers


def _post_record(post: AnalyticsPost, home: CodexHome, t0_wall: float) -> dict[str, Any]:
    authorization = post.header("authorization") or ""
    return {
        "path": post.path,
        "t": round(post.received_at - t0_wall, 4),
        "status": post.status,
        "headers": post.masked_headers(),
        "body": post.text,
        "checks": {
            "authorization_bearer": authorization.startswith("Bearer ")
            and len(authorization) > len("Bearer "),
            "authorization_is_access_token": home.access_token is not None
            and authorization == f"Bearer {home.access_token}",
            "account_id_matches": home.account_id is not None
            and post.header("chatgpt-account-id") == home.account_id,
        },
    }


def _classify(posts: list[AnalyticsPost], visible: set[str]) -> list[dict[str, Any]]:
    """Events whose thread never appeared on stdio (e.g. guardian reviewer subagents)."""
    invisible = []
    for index, post in enumerate(posts):
        try:
            events = post.events()
        except ValueError:
            continue
        for event in events:
            params = event.get("event_params") or {}
            thread_id = params.get("thread_id")
            if visible and thread_id not in visible:
                invisible.append(
                    {
                        "post_index": index,
                        "event_type": event.get("event_type"),
                        "thread_id": thread_id,
                        "subagent_source": params.get("subagent_source"),
                    }
                )
    return invisible


def _redact(doc: dict[str, Any], secrets: list[str]) -> tuple[str, int]:
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    count = 0
    for secret in sorted(secrets, key=len, reverse=True):
        count += text.count(secret)
        text = text.replace(secret, "***")
    return text, count


async def run(spec_path: Path) -> int:
    spec = SessionSpec.from_json(spec_path.read_text())
    workdir = Path(spec.workdir or spec_path.parent)
    t0 = time.monotonic()
    t0_wall = time.time()
    timings: dict[str, float] = {}
    async with FakeBackend() as backend:
        timings["backend_start"] = round(time.monotonic() - t0, 4)
        if spec.model_script is not None:
            backend.model_script = ModelScript(spec.model_script)
        if spec.log_model_requests:
            backend.request_log = []
        backend.refresh_reply = spec.refresh_reply
        project = workdir / "project"
        project.mkdir(exist_ok=True)
        (workdir / "tmp").mkdir(exist_ok=True)  # for TMPDIR={workdir}/tmp (see SessionSpec.env)
        values = {
            "codex_home": str(workdir / "codex-home"),
            "project": str(project),
            "workdir": str(workdir),
            "backend_url": backend.url,
            "backend_port": str(backend.port),
            "chatgpt_base_url": backend.chatgpt_base_url,
            "python": sys.executable,
        }
        home = build_codex_home(
            workdir / "codex-home",
            backend.port,
            HomeOptions(
                auth=spec.auth,
                analytics_enabled=spec.analytics_enabled,
                otel_metrics_off=spec.otel_metrics_off,
                top_level=tuple(fill(line, values) for line in spec.config_top_level),
                provider=tuple(fill(line, values) for line in spec.config_provider),
                tables=fill(spec.config_tables, values),
            ),
        )
        argv = [fill(arg, values) for arg in spec.command]
        # The peer (and an SDK process) gets the caller's environment plus `overrides`; the
        # PYTHONPATH that run_session set for this driver is put back as it was.
        env = dict(os.environ)
        original_pythonpath = env.pop(ORIG_PYTHONPATH_ENV, "")
        env.pop("PYTHONPATH", None)
        if original_pythonpath:
            env["PYTHONPATH"] = original_pythonpath
        overrides: dict[str, str] = {}
        if spec.isolate_home:
            (workdir / "home").mkdir(exist_ok=True)
            overrides["HOME"] = str(workdir / "home")
        overrides.update({k: fill(v, values) for k, v in spec.env.items()})
        overrides.update(home.env())
        env.update(overrides)
        ctx = Context(backend, home, t0, overrides)
        runner = run_scripted if spec.client == "scripted" else run_sdk
        try:
            out = await runner(spec, argv, env, project, ctx)
        except Exception as exc:
            out = Outcome(Transcript(), error=f"{type(exc).__name__}: {exc}")
        leftovers = _namespace_leftovers()
        if backend.request_log is not None:
            with open(workdir / "model-requests.jsonl", "w") as log:
                for entry in backend.request_log:
                    log.write(json.dumps(entry) + "\n")
        posts = list(backend.analytics)
        codex_posts = [p for p in posts if p.path == CODEX_ANALYTICS_PATH]
        timings.update(out.timings)
        timings["driver_total"] = round(time.monotonic() - t0, 4)
        result = {
            "error": out.error,
            "client": spec.client,
            "argv": argv,
            "backend_port": backend.port,
            "codex_home": str(home.path),
            "workdir": str(workdir),
            "expected_posts": spec.effective_expected_posts(),
            "events_reached": out.events_reached,
            "codex_post_count": len(codex_posts),
            "analytics": [_post_record(p, home, t0_wall) for p in posts],
            "invisible_thread_events": _classify(codex_posts, out.visible_thread_ids),
            "visible_thread_ids": sorted(out.visible_thread_ids),
            "requests": [
                r.display() | {"t": round(r.received_at - t0_wall, 4)} for r in backend.requests
            ],
            "transcript": out.transcript.rows,
            "steps": out.steps,
            "server_requests": out.server_requests,
            "peer_exit_code": out.peer_exit_code,
            "peer_killed": out.peer_killed,
            "sdk_exit_code": out.sdk_exit_code,
            "sdk": out.sdk,
            "sdk_log": out.sdk_log,
            "leftover_processes": leftovers,
            "timings": timings,
        }
    text, redactions = _redact(result, home.secrets())
    if redactions:
        doc = json.loads(text)
        doc["redactions"] = redactions
        text = json.dumps(doc, indent=1, ensure_ascii=False)
    tmp = workdir / "result.json.tmp"
    tmp.write_text(text)
    tmp.replace(workdir / "result.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m realpeer.driver SPEC.json", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(Path(args[0])))
    except Exception:
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
