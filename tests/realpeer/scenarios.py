"""The scenario matrix: what the real codex 0.169.0 is driven through, and what its model says.

A **scenario** is a few scripted steps on threads of its own (so that every event it causes can
be told apart by thread id) plus what the loopback model answers to its turns
(model_script.py: the turn text carries the marker ``[scn:NAME]``). Scenarios are run in
**groups**, one codex process each (one ``SessionSpec``), to keep the live run within a few
seconds per group; a group also carries what its scenarios need from the config (an MCP
server, fewer retries, a second provider) and from the client (answers to approvals and
dynamic tool calls).

``expected_posts`` is a synchronisation point, not an assertion: the driver waits until codex
has posted that many analytics events, then ends the session; codex flushes whatever it still
has on SIGTERM, and every POST that arrived is compared.
"""

from __future__ import annotations

import base64
import dataclasses
import struct
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from codex_rpc_analytics.core.model_catalog import CATALOGS

from .session import SessionSpec, Step

Reply = dict[str, Any]
FAST = "gpt-5.5"  # a catalog model without code mode: the model calls tools directly
UNKNOWN = "gpt-5-mini"  # not in 0.169.0's catalog: codex's fallback model info applies
DONE: Reply = {"output": [{"type": "message", "text": "done"}]}
APPROVAL_REQUESTS = ("item/commandExecution/requestApproval", "item/fileChange/requestApproval")
TINY_PNG_URL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAC"
    "hwGA60e6kgAAAABJRU5ErkJggg=="
)


@dataclass
class Scenario:
    """Steps on threads of its own; `script` maps its markers to the model's replies."""

    name: str
    steps: list[Step] = field(default_factory=list)
    script: dict[str, list[Reply]] = field(default_factory=dict)

    # -- builders (thread names and markers are made unique to the scenario) -------------------

    def var(self, key: str) -> str:
        return f"{self.name}.{key}"

    def step(self, op: str, **members: Any) -> Scenario:
        self.steps.append({"op": op, "scenario": self.name, **members})
        return self

    def thread(self, key: str = "t", **params: Any) -> Scenario:
        return self.step("thread/start", params={"cwd": "$cwd", **params}, save=self.var(key))

    def turn(self, text: str = "hi", *replies: Reply, key: str = "t", wait: bool = True,
             save: str | None = None, input: list[dict[str, Any]] | None = None,
             **params: Any) -> Scenario:
        """A turn on thread `key`; with `replies` its text carries a marker of its own."""
        if replies:
            marker = f"{self.name}.{len(self.script)}"
            self.script[marker] = list(replies)
            text = f"{text} [scn:{marker}]"
        members: dict[str, Any] = {"thread": self.var(key), "text": text, "wait": wait}
        if params or input is not None:
            members["params"] = dict(params)
            if input is not None:
                members["params"]["input"] = [{"type": "text", "text": text}, *input]
        if save is not None:
            members["save_turn"] = self.var(save)
        return self.step("turn", **members)

    def request(self, method: str, params: dict[str, Any], **members: Any) -> Scenario:
        return self.step(method, params=params, **members)

    def ref(self, key: str) -> str:
        return "$" + self.var(key)

    def wait_agent_turns(self, turn_key: str, agents: int) -> Scenario:
        """Wait until the turns of `agents` spawned agents (their root turn is `turn_key`)
        completed too: otherwise the session could end while they still run."""
        return self.step("wait_notification", method="turn/completed",
                         match={"turn": {"rootTurnId": self.ref(turn_key)}},
                         since=self.var(turn_key), count=agents + 1)


@dataclass
class Group:
    name: str
    scenarios: list[Scenario]
    expected_posts: int
    options: dict[str, Any] = field(default_factory=dict)

    def spec(self, command: list[str], workdir: str) -> SessionSpec:
        script: dict[str, list[Reply]] = {}
        steps: list[Step] = []
        for scenario in self.scenarios:
            script.update(scenario.script)
            steps.extend(scenario.steps)
        options = dict(self.options)
        env = {"TMPDIR": "{workdir}/tmp", **options.pop("env", {})}
        decisions: dict[str, str] = options.pop("server_decisions", {})
        options["server_replies_by_thread"] = {
            f"{scenario}.t": {method: {"decision": decision} for method in APPROVAL_REQUESTS}
            for scenario, decision in decisions.items()
        }
        return SessionSpec(
            command=command,
            steps=steps,
            model_script=script,
            expected_posts=self.expected_posts,
            workdir=workdir,
            env=env,
            # codex's sandbox (bwrap) never finishes a command inside our pid namespace
            pid_namespace=False,
            events_timeout_s=15.0,
            step_timeout_s=30.0,
            **options,
        )


# ------------------------------------------------------------------------------------------------
# Model replies


def message(text: str = "done") -> Reply:
    return {"output": [{"type": "message", "text": text}]}


def call(name: str, namespace: str | None = None, **arguments: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "function_call", "name": name, "arguments": arguments}
    if namespace is not None:
        item["namespace"] = namespace
    return item


def custom(name: str, text: str) -> dict[str, Any]:
    return {"type": "custom_tool_call", "name": name, "input": text}


def outputs(*items: dict[str, Any]) -> Reply:
    return {"output": list(items)}


def http(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    reply: Reply = {"status": status, "json": body}
    if headers:
        reply["headers"] = headers
    return reply


def api_error(message_text: str, kind: str = "invalid_request_error",
              code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message_text, "type": kind, "param": None, "code": code}}


def failed(code: str, message_text: str) -> Reply:
    return {"failed": {"code": code, "message": message_text}}


def png_data_url(width: int, height: int) -> str:
    """A black grayscale PNG of the given size (it compresses to almost nothing)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = (b"\x00" * (width + 1)) * height
    data = (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(data).decode()


def add_file(path: str, text: str) -> str:
    return f"*** Begin Patch\n*** Add File: {path}\n+{text}\n*** End Patch\n"


# ------------------------------------------------------------------------------------------------
# Groups


def failures() -> Group:
    """Model failures, each surfacing as codex surfaces it (retries cut to one)."""
    resets = int(time.time()) + 3600
    cases: list[tuple[str, list[Reply]]] = [
        ("fail-http-400", [http(400, api_error("Invalid value for 'input'.",
                                               code="invalid_value"))]),
        ("fail-http-403", [http(403, api_error("You are not allowed to do this."))]),
        ("fail-http-404-model", [http(404, api_error(
            "The model `gpt-x` does not exist or you do not have access to it.",
            code="model_not_found"))]),
        ("fail-http-404", [http(404, api_error("Not found"))]),
        ("fail-http-413", [http(413, api_error("Request too large.", code="request_too_large"))]),
        ("fail-http-429-rate-limit", [http(429, api_error(
            "Rate limit reached. Please try again in 20ms.", "tokens", "rate_limit_exceeded"))]),
        ("fail-http-429-usage-limit", [http(429, {"error": {
            "type": "usage_limit_reached", "message": "The usage limit has been reached",
            "plan_type": "plus", "resets_at": resets, "resets_in_seconds": 3600}}, {
            "x-codex-primary-used-percent": "100", "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-at": str(resets), "x-codex-secondary-used-percent": "40",
            "x-codex-secondary-window-minutes": "10080",
            "x-codex-secondary-reset-at": str(resets + 86400)})]),
        ("fail-http-500", [http(500, api_error("The server had an error.", "server_error"))]),
        ("fail-http-503-overloaded", [http(503, api_error(
            "The engine is currently overloaded.", "server_error", "server_is_overloaded"))]),
        ("fail-http-503", [http(503, api_error("Service unavailable", "server_error"))]),
        ("fail-stream-cut", [{"output": [{"type": "reasoning", "summary": "thinking"},
                                         {"type": "message", "text": "partial"}],
                              "cut_after_items": 1}]),
        ("fail-connection-dropped", [{"drop": True}]),
        ("fail-context-window", [failed("context_length_exceeded",
                                        "Your input exceeds the context window of this model.")]),
        ("fail-context-window-400", [http(400, api_error(
            "This model's maximum context length is 10 tokens.",
            code="context_length_exceeded"))]),
        ("fail-quota", [failed("insufficient_quota", "You exceeded your current quota.")]),
        ("fail-usage-not-included", [failed("usage_not_included", "Usage not included.")]),
        ("fail-rate-limit-in-stream", [failed("rate_limit_exceeded",
                                              "Rate limit reached. Please try again in 10ms.")]),
        ("fail-cyber-policy", [failed("cyber_policy", "This request was flagged.")]),
        ("fail-after-a-tool-call", [outputs(call("exec_command", cmd="true")),
                                    http(400, api_error("bad second request"))]),
        # Last: a failed token refresh may leave the login unusable for later turns.
        ("fail-http-401", [http(401, api_error("Your authentication token has expired.",
                                               code="token_expired"))]),
    ]
    scenarios = []
    for name, replies in cases:
        model = FAST if name == "fail-after-a-tool-call" else None
        scenario = Scenario(name)
        scenario.thread(**({"model": model, "sandbox": "danger-full-access",
                            "approvalPolicy": "never"} if model else {}))
        scenario.turn("please fail", *replies)
        scenarios.append(scenario)
    # The tool call's own event waits for the next response, which fails: codex posts it only
    # when it shuts down, so it is not waited for.
    return Group("failures", scenarios, expected_posts=2 * len(cases), options={
        # One retry instead of codex's default four/five: the retries themselves are not on
        # the wire either way (sampling_retry_count is unobservable), only their time is.
        "config_provider": ["request_max_retries = 1", "stream_max_retries = 1"],
        "env": {"CODEX_REFRESH_TOKEN_URL_OVERRIDE": "{backend_url}/oauth/token"},
        "refresh_reply": {"status": 401, "json": {"error": {
            "message": "refresh token expired", "type": "invalid_request_error",
            "code": "refresh_token_expired"}}},
    })


def tools() -> Group:
    """The model calls each kind of tool, in one turn and across turns."""
    full = {"model": FAST, "sandbox": "danger-full-access", "approvalPolicy": "never"}
    shell = Scenario("tool-shell").thread(**full)
    shell.turn("run it", outputs(call("exec_command", cmd="echo hi")), DONE)
    failing = Scenario("tool-shell-failing").thread(**full)
    failing.turn("run it", outputs(call("exec_command", cmd="exit 3")), DONE)
    patch = Scenario("tool-apply-patch").thread(**full)
    patch.turn("edit", outputs(custom("apply_patch", add_file("hello.txt", "hello"))), DONE)
    patch.turn("edit again", outputs(custom(
        "apply_patch", "*** Begin Patch\n*** Update File: hello.txt\n@@\n-hello\n+hello again\n"
        "*** Add File: other.txt\n+other\n*** End Patch\n")), DONE)
    web = Scenario("tool-web-search").thread(**full)
    web.turn("search", outputs({"type": "web_search_call", "query": "codex analytics"},
                               {"type": "message", "text": "found"}))
    image = Scenario("tool-image-generation").thread(**full)
    image.turn("draw", outputs(call("imagegen", "image_gen", prompt="a dot",
                                    transparent_background=False)), DONE)
    dynamic = Scenario("tool-dynamic").thread(**full, dynamicTools=[{
        "name": "lookup_ticket", "description": "Look up a ticket",
        "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}},
                        "required": ["id"]}}])
    dynamic.turn("look it up", outputs(call("lookup_ticket", id="T-1")), DONE)
    # A model codex does not know gets MCP tools directly (catalog models defer them).
    mcp = Scenario("tool-mcp").thread(model=UNKNOWN, sandbox="danger-full-access",
                                      approvalPolicy="never")
    mcp.turn("use mcp", outputs(call("echo", "mcp__probe", text="hello")),
             outputs(call("fail", "mcp__probe")), outputs(call("exec_command", cmd="true")),
             DONE)
    many = Scenario("tool-many-in-one-turn").thread(**full)
    many.turn("do it all", outputs(call("exec_command", cmd="true"),
                                   {"type": "web_search_call", "query": "x"}),
              outputs(custom("apply_patch", add_file("two.txt", "2"))), DONE)
    across = Scenario("tool-across-turns").thread(**full)
    across.turn("first", outputs(call("exec_command", cmd="echo one")), DONE)
    across.turn("second", outputs(call("exec_command", cmd="echo two"),
                                  call("exec_command", cmd="echo three")), DONE)
    across.turn("third", outputs({"type": "web_search_call", "query": "y"},
                                 {"type": "message", "text": "ok"}))
    sandboxed = Scenario("tool-shell-sandboxed").thread(model=FAST)  # read-only, on-request
    sandboxed.turn("look", outputs(call("exec_command", cmd="ls")), DONE)
    no_usage = Scenario("turn-without-usage").thread(**full)
    no_usage.turn("quiet", {"output": [{"type": "message", "text": "no usage"}], "usage": None})
    spawn_v1 = Scenario("subagent-v1").thread(model=UNKNOWN, sandbox="danger-full-access",
                                             approvalPolicy="never")
    spawn_v1.turn("delegate", outputs(call("spawn_agent", "multi_agent_v1",
                                           message="help out", agent_type="default")), DONE,
                  save="parent")
    spawn_v1.wait_agent_turns("parent", 1)
    scenarios = [shell, failing, patch, web, image, dynamic, mcp, many, across, sandboxed,
                 no_usage, spawn_v1]
    return Group("tools", scenarios, expected_posts=50, options={
        "config_tables": MCP_SERVER,
        "server_replies": {"item/tool/call": {
            "contentItems": [{"type": "inputText", "text": "ticket T-1 is open"}],
            "success": True}},
    })


def code_mode() -> Group:
    """The default model (code mode): tools are called from JavaScript `exec` cells; and a v2
    agent spawned through the collaboration tools."""
    shell = Scenario("code-mode-exec").thread()
    shell.turn("run it", outputs(custom("exec", "const r = await tools.exec_command("
                                        "{cmd: 'echo hi'});\ntext(JSON.stringify(r));")),
               DONE)
    patch = Scenario("code-mode-exec-patch").thread(sandbox="workspace-write")
    patch.turn("edit", outputs(custom("exec", "await tools.apply_patch(" + repr(
        add_file("code.txt", "from code")) + ");\ntext('ok');")), DONE)
    pure = Scenario("code-mode-exec-no-tools").thread()
    pure.turn("compute", outputs(custom("exec", "text(String(6 * 7));")), DONE)
    spawn = Scenario("subagent-v2").thread()
    spawn.turn("delegate", outputs(call("spawn_agent", "collaboration", task_name="helper",
                                        message="help out")), DONE, save="parent")
    spawn.wait_agent_turns("parent", 1)
    return Group("code-mode", [shell, patch, pure, spawn], expected_posts=15)


def interrupts_and_steers() -> Group:
    """turn/interrupt early and late, turn/steer accepted and each rejection codex gives,
    steering a review and a compaction, a queued prompt."""
    early = Scenario("interrupt-early").thread()
    early.turn("wait", {**DONE, "hold": "early", "hold_after_items": 0}, wait=False,
               save="turn")
    early.step("wait_hold", name="early")
    early.request("turn/interrupt", {"threadId": early.ref("t"), "turnId": early.ref("turn")})
    early.step("wait_turn", turn=early.var("turn"))
    late = Scenario("interrupt-late").thread(model=FAST, sandbox="danger-full-access",
                                              approvalPolicy="never")
    late.turn("work", outputs(call("exec_command", cmd="true")),
              {"output": [{"type": "reasoning", "summary": "thinking"},
                          {"type": "message", "text": "never"}],
               "hold": "late", "hold_after_items": 1}, wait=False, save="turn")
    late.step("wait_hold", name="late")
    late.request("turn/interrupt", {"threadId": late.ref("t"), "turnId": late.ref("turn")})
    late.step("wait_turn", turn=late.var("turn"))
    steer = Scenario("steer-accepted").thread()
    steer.turn("start", {**DONE, "hold": "steer", "hold_after_items": 0}, DONE, wait=False,
               save="turn", input=[{"type": "image", "url": TINY_PNG_URL}])
    steer.step("wait_hold", name="steer")
    steer.request("turn/steer", {"threadId": steer.ref("t"), "expectedTurnId": steer.ref("turn"),
                                 "input": [{"type": "text", "text": "also this"},
                                           {"type": "image", "url": TINY_PNG_URL}]})
    steer.request("turn/steer", {"threadId": steer.ref("t"), "expectedTurnId": steer.ref("turn"),
                                 "input": [{"type": "text", "text": "and this"}]})
    steer.step("release", name="steer")
    steer.step("wait_turn", turn=steer.var("turn"))
    rejected = Scenario("steer-rejected").thread()
    rejected.turn("start", {**DONE, "hold": "rejected", "hold_after_items": 0}, DONE,
                  wait=False, save="turn")
    rejected.step("wait_hold", name="rejected")
    for expected, steer_input in (
        ("not-the-active-turn", [{"type": "text", "text": "x"}]),
        (rejected.ref("turn"), []),
        ("", [{"type": "text", "text": "x"}]),  # codex posts nothing for this one
        (rejected.ref("turn"), [{"type": "text", "text": "x" * 1_048_577}]),
    ):
        rejected.request("turn/steer", {"threadId": rejected.ref("t"),
                                        "expectedTurnId": expected, "input": steer_input},
                         expect_error=True)
    rejected.step("release", name="rejected")
    rejected.step("wait_turn", turn=rejected.var("turn"))
    rejected.request("turn/steer", {"threadId": rejected.ref("t"),
                                    "expectedTurnId": rejected.ref("turn"),
                                    "input": [{"type": "text", "text": "too late"}]},
                     expect_error=True)
    review = Scenario("steer-review").thread()
    review.turn("first", DONE)
    review.script["steer-review.review"] = [{**DONE, "hold": "review", "hold_after_items": 0},
                                            DONE]
    review.request("review/start", {"threadId": review.ref("t"), "target": {
        "type": "custom", "instructions": "review this [scn:steer-review.review]"}},
        save_turn=review.var("r"))
    review.step("wait_hold", name="review")
    review.request("turn/steer", {"threadId": review.ref("t"), "expectedTurnId": review.ref("r"),
                                  "input": [{"type": "text", "text": "x"}]}, expect_error=True)
    review.step("release", name="review")
    review.step("wait_notification", method="turn/completed",
                match={"threadId": review.ref("t"), "turn": {"rootTurnId": review.ref("r")}})
    compact = Scenario("steer-compact").thread()
    compact.turn("first", DONE)
    compact.script["steer-compact.0:compact"] = [
        {"output": [{"type": "message", "text": "summary"}], "hold": "compact",
         "hold_after_items": 0}, message("summary")]
    compact.step("mark", name=compact.var("c"))
    compact.request("thread/compact/start", {"threadId": compact.ref("t")})
    compact.step("wait_notification", method="turn/started",
                 match={"threadId": compact.ref("t")}, since=compact.var("c"),
                 save_turn=compact.var("ct"))
    compact.step("wait_hold", name="compact")
    compact.request("turn/steer", {"threadId": compact.ref("t"),
                                   "expectedTurnId": compact.ref("ct"),
                                   "input": [{"type": "text", "text": "x"}]}, expect_error=True)
    compact.step("release", name="compact")
    compact.step("wait_turn", turn=compact.var("ct"))
    queued = Scenario("queued-prompt").thread()
    queued.turn("first", {**DONE, "hold": "queued", "hold_after_items": 0}, DONE, wait=False,
                save="turn")
    queued.step("wait_hold", name="queued")
    queued.request("thread/queue/add", {"threadId": queued.ref("t"), "clientUserMessageId": "m1",
                                        "input": [{"type": "text", "text": "queued"},
                                                  {"type": "image", "url": TINY_PNG_URL}]})
    queued.step("release", name="queued")
    # The queue runs its prompt as the thread's next turn once the active one is over.
    queued.step("wait_notification", method="turn/completed", match={"threadId": queued.ref("t")},
                since=queued.var("turn"), count=2)
    return Group("interrupts-steers", [early, late, steer, rejected, review, compact, queued],
                 expected_posts=25)


def settings() -> Group:
    """Models with different catalog defaults, and every setting a turn event reports."""
    scenarios = []
    for model in ("gpt-6.1-sol", "gpt-6-sol", "gpt-5.6-luna", FAST, UNKNOWN):
        scenario = Scenario(f"model-{model}").thread(model=model)
        scenario.turn("hi", DONE)
        scenarios.append(scenario)
    sol = "gpt-6.1-sol"
    overrides = Scenario("turn-overrides").thread(model=sol)
    overrides.turn("effort", DONE, effort="high")
    overrides.turn("summary", DONE, summary="detailed")
    overrides.turn("no summary", DONE, summary="none")
    overrides.turn("fast", DONE, serviceTier="priority")
    overrides.turn("flex", DONE, serviceTier="flex")
    overrides.turn("inherits", DONE)
    overrides.turn("fast once", DONE, serviceTierForTurn="priority")
    overrides.turn("friendly", DONE, personality="friendly")
    overrides.turn("no personality", DONE, personality="none")
    collaboration = {"model": sol, "reasoning_effort": None, "developer_instructions": None}
    overrides.turn("plan", DONE, collaborationMode={"mode": "plan", "settings": collaboration})
    overrides.turn("default mode", DONE,
                   collaborationMode={"mode": "default", "settings": collaboration})
    overrides.turn("unknown model", DONE, model=UNKNOWN, summary="auto")
    tiers = Scenario("service-tiers").thread(model=sol, serviceTier="priority")
    tiers.turn("thread tier", DONE)
    for tier in ("fast", "default", "auto", "scale"):
        tiers.turn(f"tier {tier}", DONE, serviceTier=tier)
    thread_settings = Scenario("thread-settings").thread(
        personality="pragmatic", approvalPolicy="untrusted", sandbox="workspace-write")
    thread_settings.turn("hi", DONE)
    config_summary = Scenario("config-summary").thread(
        model=UNKNOWN, config={"model_reasoning_summary": "concise"})
    config_summary.turn("hi", DONE)
    policies = []
    for policy in ("untrusted", "on-request", "never"):
        scenario = Scenario(f"approval-{policy}").thread(approvalPolicy=policy)
        scenario.turn("hi", DONE)
        policies.append(scenario)
    granular = Scenario("approval-granular").thread(approvalPolicy={"granular": {
        "sandbox_approval": True, "rules": True, "mcp_elicitations": True,
        "request_permissions": False, "skill_approval": False}})
    granular.turn("hi", DONE)
    reviewer = Scenario("approvals-reviewer-auto").thread(approvalPolicy="never",
                                                          approvalsReviewer="auto_review")
    reviewer.turn("hi", DONE)
    sandboxes = []
    for sandbox in ("read-only", "workspace-write", "danger-full-access"):
        scenario = Scenario(f"sandbox-{sandbox}").thread(sandbox=sandbox)
        scenario.turn("hi", DONE)
        sandboxes.append(scenario)
    network = Scenario("sandbox-policy-override").thread()
    network.turn("net", DONE, sandboxPolicy={"type": "workspaceWrite", "writableRoots": [],
                                             "networkAccess": True})
    network.turn("full", DONE, sandboxPolicy={"type": "dangerFullAccess"})
    # Images sent inline: their sizes, and the size codex prepares them to (per model).
    images = Scenario("image-inputs").thread(model="gpt-6.1-sol")
    pictures = [{"type": "image", "url": png_data_url(width, height)}
                for width, height in ((1, 1), (4000, 3000), (6000, 2000), (10000, 1100))]
    images.turn("look", DONE, input=pictures)
    images.thread(key="fallback", model=UNKNOWN)
    images.turn("look", DONE, key="fallback", input=pictures)
    # A thread's multi-agent version is fixed when it starts: a resume keeps it, a fork
    # inherits it, switching the model does not change it.
    inherit = Scenario("multi-agent-inheritance").thread(model="gpt-5.6-luna")
    inherit.turn("v1 thread", DONE)
    inherit.turn("switch", DONE, model=sol)
    inherit.request("thread/resume", {"threadId": inherit.ref("t")})
    inherit.turn("resumed", DONE)
    inherit.request("thread/fork", {"threadId": inherit.ref("t")}, save=inherit.var("fork"))
    inherit.turn("forked", DONE, key="fork")
    archive = Scenario("thread-archive").thread()
    archive.turn("hi", DONE)
    archive.request("thread/archive", {"threadId": archive.ref("t")})
    archive.request("thread/unarchive", {"threadId": archive.ref("t")})
    scenarios += [overrides, tiers, thread_settings, config_summary, *policies, granular,
                  reviewer, *sandboxes, network, inherit, images, archive]
    return Group("settings", scenarios, expected_posts=67)


def approvals() -> Group:
    """Approval requests answered by the client: accepted, declined, cancelled."""
    asked = {"model": FAST, "approvalPolicy": "on-request"}  # read-only sandbox
    escalate = {"sandbox_permissions": "require_escalated", "justification": "need it"}
    accepted = Scenario("approval-command-accepted").thread(**asked)
    accepted.turn("run", outputs(call("exec_command", cmd="touch /tmp/approved", **escalate)),
                  DONE)
    declined = Scenario("approval-command-declined").thread(**asked)
    declined.turn("run", outputs(call("exec_command", cmd="touch /tmp/declined", **escalate)),
                  DONE)
    session = Scenario("approval-command-for-session").thread(**asked)
    session.turn("run", outputs(call("exec_command", cmd="touch /tmp/session", **escalate)),
                 DONE)
    patch = Scenario("approval-patch-accepted").thread(**asked)
    patch.turn("edit", outputs(custom("apply_patch", add_file("approved.txt", "yes"))), DONE)
    patch_declined = Scenario("approval-patch-declined").thread(**asked)
    patch_declined.turn("edit", outputs(custom("apply_patch", add_file("no.txt", "no"))), DONE)
    return Group("approvals", [accepted, declined, session, patch, patch_declined],
                 expected_posts=21, options={"server_decisions": {
                     "approval-command-accepted": "accept",
                     "approval-command-declined": "decline",
                     "approval-command-for-session": "acceptForSession",
                     "approval-patch-accepted": "accept",
                     "approval-patch-declined": "decline",
                 }})


def compaction() -> Group:
    """Compaction asked for by the client, and by codex itself (context limit, model switch)."""
    manual = Scenario("compaction-manual").thread()
    manual.turn("first", DONE)
    manual.step("mark", name=manual.var("c"))
    manual.request("thread/compact/start", {"threadId": manual.ref("t")})
    manual.step("wait_notification", method="turn/completed", match={"threadId": manual.ref("t")},
                since=manual.var("c"))
    manual.turn("after", DONE)
    limit = Scenario("compaction-context-limit").thread(
        model=FAST, config={"model_auto_compact_token_limit": 5000})
    big = {"input_tokens": 9000, "output_tokens": 100}
    limit.turn("fill", {**DONE, "usage": big})
    limit.turn("more", {**DONE, "usage": big})
    switch = Scenario("compaction-model-switch").thread()
    switch.turn("first", DONE)
    switch.turn("switch", DONE, model=FAST)
    return Group("compaction", [manual, limit, switch], expected_posts=12)


MCP_SERVER = """[mcp_servers.probe]
command = "{python}"
args = ["%s"]
""" % (__file__.rsplit("/", 1)[0] + "/mcp_server.py")


def catalog() -> Group:
    """One turn (with a small inline image) on every model of codex's catalog and on a model it
    does not know: the per-model defaults of core/model_catalog.py, as codex reports them."""
    scenarios = [Scenario("catalog-model-list").request("model/list", {"includeHidden": True},
                                                        result_keys=["data", "nextCursor"])]
    for model in (*CATALOGS["0.169.0"].models, UNKNOWN):
        scenario = Scenario(f"catalog-{model}").thread(model=model)
        scenario.turn("hi", DONE, input=[{"type": "image", "url": png_data_url(1, 1)}])
        scenarios.append(scenario)
    return Group("catalog", scenarios, expected_posts=2 * (len(scenarios) - 1))


ALL_GROUPS = (failures, tools, code_mode, interrupts_and_steers, settings, approvals,
              compaction, catalog)


def groups() -> list[Group]:
    return [build() for build in ALL_GROUPS]


def with_options(group: Group, **options: Any) -> Group:
    return dataclasses.replace(group, options={**group.options, **options})
