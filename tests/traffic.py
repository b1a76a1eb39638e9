"""A generated month of a team's codex traffic, for the report's tests and benchmark.

Every event is built from the package's own event structs (``core/events.py``,
``core/app_events.py``), which are wire-identical to what codex 0.169.0 sends, so a generated
``codex_turn_event`` has exactly the keys, in the order, of the recorded real ones in
``tests/fixtures`` (``tests/report/test_traffic.py`` checks it). The values follow a team's
week: many developers on several clients and ingest sources, working days busier than
weekends and office hours busier than nights; threads started, resumed and forked; turns that
complete, fail (with codex's error kinds and HTTP statuses), get interrupted or never complete;
steers accepted and rejected; subagent threads spawned by turns; skills, apps and plugins.

Deterministic for a seed. Only the package and the standard library: ``bench/`` imports it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from codex_rpc_analytics.core.app_events import (
    AppParams,
    AppUsedEvent,
    PluginUsedEvent,
    PluginUsedParams,
    SkillInvocationEvent,
    SkillInvocationParams,
    ThreadArchiveEvent,
    ThreadArchiveParams,
)
from codex_rpc_analytics.core.client_info import AppServerClient
from codex_rpc_analytics.core.events import (
    AnyEvent,
    ThreadInitialized,
    ThreadInitializedParams,
    TurnEvent,
    TurnEventParams,
    TurnSteerEvent,
    TurnSteerParams,
    encode_event,
)
from codex_rpc_analytics.core.runtime import RuntimeInfo

T = TypeVar("T")
DAY_MS = 86_400_000

CLIENTS = [  # product_client_id, versions, weight
    ("codex_vscode", ["0.4.12", "0.4.13"], 40),
    ("codex_cli_rs", ["0.168.0", "0.169.0"], 25),
    ("codex_jetbrains", ["1.2.0"], 12),
    ("zed", ["0.201.3"], 8),
    ("codex_sdk_python", ["0.3.1"], 8),
    ("neovim-codex", ["0.9.0"], 4),
    ("codex_desktop", ["2.0.1"], 3),
]
SOURCES = [("platform-team", 30), ("mobile", 20), ("data-eng", 18), ("web", 22), ("ci-bots", 10)]
# model, weight, median turn seconds, median output tokens, provider
MODELS = [
    ("gpt-5.1-codex", 38, 35.0, 1400, "openai"),
    ("gpt-5.1-codex-mini", 22, 12.0, 700, "openai"),
    ("gpt-5.2", 20, 55.0, 2200, "openai"),
    ("gpt-6.1-sol", 15, 70.0, 2600, "openai"),
    ("o4-mini", 5, 20.0, 900, "openai"),
]
OS = [("macos", "15.3.1", "aarch64", 55), ("linux", "12.0.0", "x86_64", 35),
      ("windows", "11.0.26100", "x86_64", 10)]
SANDBOX = [("workspace_write", 60), ("read_only", 22), ("full_access", 13), ("external_sandbox", 5)]
APPROVAL = [("on-request", 58), ("never", 22), ("untrusted", 15), ("on-failure", 5)]
EFFORT = [(None, 30), ("low", 10), ("medium", 35), ("high", 20), ("xhigh", 5)]
TIER = [("default", 80), ("flex", 12), ("priority", 8)]
# codex_error_kind, HTTP status choices, weight
FAILURES: list[tuple[str | None, list[int | None], int]] = [
    ("context_window_exceeded", [None], 22),
    ("usage_limit_reached", [None], 14),
    ("server_overloaded", [None], 12),
    ("rate_limit_exceeded", [None], 10),
    ("response_stream_failed", [500, 502], 12),
    ("connection_failed", [502, 503, 504], 10),
    ("retry_limit", [429, 500], 8),
    ("invalid_request", [None], 6),
    ("sandbox", [None], 4),
    (None, [None], 2),
]
REJECTIONS = [("no_active_turn", 50), ("expected_turn_mismatch", 30), ("empty_input", 8),
              ("non_steerable_review", 5), ("input_too_large", 2), (None, 5)]
SUBAGENTS = [("thread_spawn", 70), ("review", 18), ("compact", 8), ("memory_consolidation", 4)]
SKILLS = [("doc", 30), ("pdf", 12), ("frontend-design", 18), ("test-runner", 25),
          ("sql-review", 15)]
APPS = [("connector_github", "GitHub", 40), ("connector_linear", "Linear", 25),
        ("connector_slack", "Slack", 20), ("connector_gcal", "Google Calendar", 15)]
PLUGINS = [("figma@openai-curated", 30), ("sentry@openai-curated", 35), ("datadog@acme", 20),
           ("jira@atlassian", 15)]


def _pick(rng: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


@dataclass(frozen=True)
class Developer:
    client: AppServerClient
    runtime: RuntimeInfo
    source: str
    models: list[tuple[str, int]]
    sandbox: str
    approval: str
    effort: str | None
    tier: str
    sessions_per_day: float


@dataclass(frozen=True)
class Generated:
    source: str
    event_id: str
    payload: bytes
    received_at_ms: int


def _developer(rng: random.Random) -> Developer:
    name, versions, _ = rng.choices(CLIENTS, [c[2] for c in CLIENTS])[0]
    os_name, os_version, arch, _ = rng.choices(OS, [o[3] for o in OS])[0]
    # Each developer leans on one or two models.
    favourite = rng.choices(MODELS, [m[1] for m in MODELS])[0][0]
    models = [(favourite, 80)] + [(m[0], 5) for m in MODELS if m[0] != favourite]
    in_process = name == "codex_sdk_python"
    return Developer(
        client=AppServerClient(product_client_id=name, client_name=name,
                               client_version=rng.choice(versions),
                               rpc_transport="in_process" if in_process else "stdio",
                               experimental_api_enabled=rng.random() < 0.3),
        runtime=RuntimeInfo(codex_rs_version=rng.choice(["0.168.0", "0.169.0", "0.169.0"]),
                            runtime_os=os_name, runtime_os_version=os_version,
                            runtime_arch=arch),
        source=_pick(rng, SOURCES),
        models=models,
        sandbox=_pick(rng, SANDBOX),
        approval=_pick(rng, APPROVAL),
        effort=_pick(rng, EFFORT),
        tier=_pick(rng, TIER),
        sessions_per_day=rng.uniform(1.0, 6.0),
    )


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def new(self, moment_ms: int) -> str:
        """A UUIDv7-shaped id (codex's thread and turn ids are v7), time-ordered."""
        rand = self._rng.getrandbits(80)
        value = (moment_ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 4) & ((1 << 76) - 1)
        value = value & ~(0b11 << 62) | 0b10 << 62
        return str(uuid.UUID(int=value))


class _Session:
    """One developer's sitting: a thread, its turns, and what the turns set off."""

    def __init__(self, rng: random.Random, ids: _Ids, dev: Developer, start_ms: int) -> None:
        self.rng, self.ids, self.dev = rng, ids, dev
        self.clock_ms = start_ms
        self.out: list[tuple[AnyEvent, int]] = []  # event, occurred-at ms

    def emit(self, event: AnyEvent) -> None:
        self.out.append((event, self.clock_ms))

    def run(self) -> list[tuple[AnyEvent, int]]:
        rng = self.rng
        mode = _pick(rng, [("new", 75), ("resumed", 18), ("forked", 7)])
        model = _pick(rng, self.dev.models)
        thread_id = self.ids.new(self.clock_ms)
        ephemeral = rng.random() < 0.03
        self.thread(thread_id, model, mode, ephemeral, parent=None, subagent=None)
        for index in range(min(40, int(rng.expovariate(1 / 6)) + 1)):
            self.turn(thread_id, model, mode, ephemeral, first=index == 0 and mode == "new",
                      parent=None, subagent=None)
            self.clock_ms += int(rng.expovariate(1 / 90_000))  # reading, typing
            if rng.random() < 0.04:
                model = _pick(rng, self.dev.models)
        if rng.random() < 0.06:
            self.emit(ThreadArchiveEvent(ThreadArchiveParams(
                thread_id=thread_id, action="archived", occurred_at_ms=self.clock_ms,
                app_server_client=self.dev.client, runtime=self.dev.runtime)))
        return self.out

    def thread(self, thread_id: str, model: str, mode: str, ephemeral: bool,
               parent: str | None, subagent: str | None) -> None:
        client = self.dev.client
        if subagent is not None:
            client = AppServerClient(client.product_client_id, client.client_name,
                                     client.client_version, "in_process", None)
        self.emit(ThreadInitialized(ThreadInitializedParams(
            thread_id=thread_id, session_id=thread_id, app_server_client=client,
            runtime=self.dev.runtime, model=model, ephemeral=ephemeral, is_worktree=None,
            thread_source="subagent" if subagent else "user", initialization_mode=mode,
            subagent_source=subagent, parent_thread_id=parent,
            forked_from_thread_id=self.ids.new(self.clock_ms - DAY_MS) if mode == "forked"
            else None,
            created_at=self.clock_ms // 1000 if mode != "resumed"
            else (self.clock_ms - int(self.rng.uniform(1, 20) * DAY_MS)) // 1000)))

    def turn(self, thread_id: str, model: str, mode: str, ephemeral: bool, first: bool,
             parent: str | None, subagent: str | None) -> None:
        rng, dev = self.rng, self.dev
        spec = next(m for m in MODELS if m[0] == model)
        turn_id = self.ids.new(self.clock_ms)
        started_ms = self.clock_ms
        status = _pick(rng, [("completed", 88), ("failed", 5), ("interrupted", 5), (None, 2)])
        duration_ms = int(spec[2] * 1000 * rng.lognormvariate(0, 0.8))
        if status == "failed":
            duration_ms = int(duration_ms * rng.uniform(0.05, 0.6))
        elif status == "interrupted":
            duration_ms = int(duration_ms * rng.uniform(0.1, 0.9))
        error_kind: str | None = None
        http_status: int | None = None
        if status == "failed":
            kind, statuses, _ = rng.choices(FAILURES, [f[2] for f in FAILURES])[0]
            error_kind, http_status = kind, rng.choice(statuses)
        completed = status is not None
        ran = 1.0 if status == "completed" else rng.uniform(0.1, 0.7)
        shell = int(rng.expovariate(1 / 3.5) * ran)
        files = int(rng.expovariate(1 / 1.6) * ran)
        mcp = int(rng.expovariate(1 / 0.5) * ran) if rng.random() < 0.3 else 0
        web = 1 if rng.random() < 0.08 else 0
        spawns = 1 if subagent is None and rng.random() < 0.05 else 0
        dynamic = 1 if rng.random() < 0.03 else 0
        image = 1 if rng.random() < 0.005 else 0
        tools = shell + files + mcp + web + spawns + dynamic + image
        input_tokens = int(rng.lognormvariate(10.2, 0.7) * (1 + tools / 10))
        cached = int(input_tokens * (0.0 if first else rng.uniform(0.45, 0.95)))
        output = int(spec[3] * rng.lognormvariate(0, 0.6) * ran)
        # As codex counts them: cached input is part of input, reasoning part of output.
        reasoning = int(output * {None: 0.2, "low": 0.1, "medium": 0.3, "high": 0.5,
                                  "xhigh": 0.7}[dev.effort] * rng.uniform(0.6, 1.2))
        steers = 0
        if rng.random() < 0.09:
            steers = 1 + int(rng.random() < 0.3)
            for _ in range(steers):
                self.clock_ms = started_ms + int(rng.uniform(0.1, 0.8) * max(duration_ms, 1000))
                self.steer(thread_id, turn_id, parent, subagent, accepted=True)
        if rng.random() < 0.02:
            self.clock_ms = started_ms + duration_ms + 500
            self.steer(thread_id, turn_id, parent, subagent, accepted=False)
        interrupt_at = started_ms + int(duration_ms * 0.95) if status == "interrupted" else None
        self.clock_ms = started_ms + duration_ms
        self.emit(TurnEvent(TurnEventParams(
            critical_path_status="disabled", critical_path_duration_ms=None,
            critical_path_inference_ms=None, critical_path_sampling_ms=None,
            critical_path_compaction_ms=None, critical_path_auto_review_ms=None,
            critical_path_auto_review_overhead_ms=None, critical_path_user_wait_ms=None,
            critical_path_tools_ms=None, critical_path_overhead_ms=None,
            critical_path_unknown_ms=None, thread_id=thread_id, session_id=thread_id,
            turn_id=turn_id, active_plugin_ids_at_turn_start=[], voice_session_id=None,
            root_turn_id=turn_id, turn_trigger=None, codex_turn_source=None,
            submission_type=None,
            app_server_client=dev.client if subagent is None else AppServerClient(
                dev.client.product_client_id, dev.client.client_name,
                dev.client.client_version, "in_process", None),
            runtime=dev.runtime, ephemeral=ephemeral,
            thread_source="subagent" if subagent else "user", initialization_mode=mode,
            subagent_source=subagent, parent_thread_id=parent, model=model,
            model_provider=spec[4], sandbox_policy=dev.sandbox, reasoning_effort=dev.effort,
            reasoning_summary=None, service_tier=dev.tier, approval_policy=dev.approval,
            approvals_reviewer="user", guardian_v2_enabled=False, multi_agent_version="v2",
            sandbox_network_access=dev.sandbox == "full_access",
            collaboration_mode="plan" if rng.random() < 0.07 else "default", personality=None,
            workspace_kind=None, num_input_images=1 if rng.random() < 0.04 else 0,
            image_preparations=[], is_first_turn=first, status=status,
            explicit_client_interrupt_requested_at_ms=interrupt_at,
            turn_error={"message": "turn failed"} if status == "failed" else None,
            codex_error_kind=error_kind, codex_error_http_status_code=http_status,
            usage_limit_window_minutes=None, steer_count=steers,
            total_tool_call_count=tools, shell_command_count=shell, file_change_count=files,
            mcp_tool_call_count=mcp, dynamic_tool_call_count=dynamic,
            subagent_tool_call_count=spawns, web_search_count=web,
            image_generation_count=image, input_tokens=input_tokens,
            cached_input_tokens=cached, cache_write_input_tokens=0, output_tokens=output,
            reasoning_output_tokens=reasoning,
            total_tokens=input_tokens + output,
            before_first_sampling_ms=int(rng.uniform(60, 400)),
            sampling_ms=int(duration_ms * 0.7), compaction_ms=0,
            between_sampling_overhead_ms=0, tool_blocking_ms=0,
            after_last_sampling_ms=int(rng.uniform(2, 30)),
            sampling_request_count=1 + tools, sampling_retry_count=0, tools_change_count=0,
            duration_ms=duration_ms if completed else None,
            started_at=started_ms // 1000,
            completed_at=(started_ms + duration_ms) // 1000 if completed else 0)))
        self.extras(thread_id, turn_id, model)
        for _ in range(spawns):
            self.subagent(thread_id, model)
        self.clock_ms = started_ms + duration_ms

    def steer(self, thread_id: str, turn_id: str, parent: str | None, subagent: str | None,
              accepted: bool) -> None:
        reason = None if accepted else _pick(self.rng, REJECTIONS)
        self.emit(TurnSteerEvent(TurnSteerParams(
            thread_id=thread_id, session_id=thread_id, expected_turn_id=turn_id,
            accepted_turn_id=turn_id if accepted else None, app_server_client=self.dev.client,
            runtime=self.dev.runtime, thread_source="subagent" if subagent else "user",
            subagent_source=subagent, parent_thread_id=parent, num_input_images=0,
            result="accepted" if accepted else "rejected",
            rejection_reason=reason,
            created_at=self.clock_ms // 1000)))

    def extras(self, thread_id: str, turn_id: str, model: str) -> None:
        rng, client_id = self.rng, self.dev.client.product_client_id
        if rng.random() < 0.06:
            name = _pick(rng, SKILLS)
            self.emit(SkillInvocationEvent(
                skill_id=f"{rng.getrandbits(160):040x}", skill_name=name,
                event_params=SkillInvocationParams(
                    product_client_id=client_id, skill_scope="user", plugin_id=None,
                    remote_plugin_id=None, repo_url=None, thread_id=thread_id,
                    turn_id=turn_id, invoke_type=rng.choice(["explicit", "implicit"]),
                    model_slug=model)))
        if rng.random() < 0.04:
            connector, app, _ = rng.choices(APPS, [a[2] for a in APPS])[0]
            self.emit(AppUsedEvent(AppParams(
                connector_id=connector, thread_id=thread_id, turn_id=turn_id, app_name=app,
                product_client_id=client_id, invoke_type="explicit", model_slug=model)))
        if rng.random() < 0.03:
            plugin = _pick(rng, PLUGINS)
            name, market = plugin.rsplit("@", 1)
            self.emit(PluginUsedEvent(PluginUsedParams(
                plugin_id=plugin, remote_plugin_id=None, plugin_name=name,
                marketplace_name=market, has_skills=False, mcp_server_count=1,
                connector_ids=[], product_client_id=client_id, mcp_server_names=[name],
                thread_id=thread_id, turn_id=turn_id, model_slug=model)))

    def subagent(self, parent: str, model: str) -> None:
        kind = _pick(self.rng, SUBAGENTS)
        child = self.ids.new(self.clock_ms)
        resume_at = self.clock_ms
        self.thread(child, model, "new", False, parent=parent, subagent=kind)
        for index in range(1 + int(self.rng.expovariate(1 / 1.5))):
            self.turn(child, model, "new", False, first=index == 0, parent=parent,
                      subagent=kind)
        self.clock_ms = resume_at


def month_of_traffic(events: int, end_ms: int, *, days: int = 30, seed: int = 12,
                     developers: int | None = None) -> Iterator[Generated]:
    """About ``events`` events (exactly that many) spread over the ``days`` before
    ``end_ms``, session by session."""
    rng = random.Random(seed)
    ids = _Ids(rng)
    team = [_developer(rng) for _ in range(developers or max(12, min(400, events // 2500)))]
    start_ms = end_ms - days * DAY_MS
    produced = 0
    while produced < events:
        dev = rng.choice(team)
        day = rng.randrange(days)
        day_start = start_ms - start_ms % DAY_MS + day * DAY_MS
        weekday = (day_start // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday
        if weekday >= 5 and rng.random() < 0.8:
            continue  # weekends are quiet
        hour = min(23.5, max(0.0, rng.gauss(13.5, 3.0)))
        moment = day_start + int(hour * 3_600_000) + rng.randrange(3_600_000)
        if not start_ms <= moment < end_ms - 6 * 3_600_000:
            continue
        for event, occurred_ms in _Session(rng, ids, dev, moment).run():
            if produced == events:
                return
            produced += 1
            yield Generated(source=dev.source, event_id=ids.new(occurred_ms),
                            payload=encode_event(event),
                            received_at_ms=occurred_ms + rng.randrange(200, 5000))
