"""Key-by-key comparison of our events with the ones codex posted for the same session.

Used by the live scenario matrix (tests/realpeer/test_matrix.py) and by the ordinary suite's
replay of the recorded matrix fixtures (tests/adapters/test_matrix_fixtures.py). Every key of
every event codex posted lands in one of three columns:

* **equal**: our value is codex's value (for the few keys measured on a clock, within the
  tolerance of ``TOLERANCES``: the tap's clock and codex's are different clocks);
* **unobservable**: the key is listed in ``UNOBSERVABLE`` with the reason no JSON-RPC message
  carries it (or an event as a whole in ``unobservable_event``: codex posts it for a thread
  that never appears on the wire);
* **different**: anything else, including keys of events codex posted and we did not, and
  every key of events we produced that codex did not post.

The lists are per key and per event type, never a blanket skip; docs/conformance.md is the
readable form and a test keeps the two in step.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Event = dict[str, Any]

_TURN_PROFILE = "core's turn profile, measured inside codex"
_RESPONSE_IDS = "the model's response ids never reach the JSON-RPC wire"
_CODE_CELL = ("the code-mode `exec` cell a nested call ran in is not an item on the wire "
              "(null for direct calls)")
_TOOL_UNOBSERVABLE = {
    "originating_response_id": _RESPONSE_IDS,
    "subsequent_response_id": _RESPONSE_IDS,
    "cell_id": _CODE_CELL,
    "parent_call_id": _CODE_CELL,
}
TOOL_EVENT_TYPES = (
    "codex_command_execution_event", "codex_file_change_event", "codex_mcp_tool_call_event",
    "codex_dynamic_tool_call_event", "codex_collab_agent_tool_call_event",
    "codex_web_search_event", "codex_image_generation_event",
)

UNOBSERVABLE: dict[str, dict[str, str]] = {
    "codex_turn_event": {
        "before_first_sampling_ms": _TURN_PROFILE,
        "sampling_ms": _TURN_PROFILE,
        "compaction_ms": _TURN_PROFILE,
        "between_sampling_overhead_ms": _TURN_PROFILE,
        "tool_blocking_ms": _TURN_PROFILE,
        "after_last_sampling_ms": _TURN_PROFILE,
        "sampling_request_count": _TURN_PROFILE + " (retries and tool round trips included)",
        "sampling_retry_count": _TURN_PROFILE,
        "tools_change_count": _TURN_PROFILE,
    },
    **{event_type: dict(_TOOL_UNOBSERVABLE) for event_type in TOOL_EVENT_TYPES},
}
UNOBSERVABLE["codex_image_generation_event"]["imagegen_request_id"] = (
    "the image service's request id is not on the wire")
UNOBSERVABLE["codex_accepted_line_fingerprints"] = {
    "repo_hash": "a hash of the repository's remote that codex computes with git",
}

# Keys measured on a clock: the tap stamps the moment it saw a message, codex the moment it
# handled it, usually a few milliseconds later (seconds can straddle a boundary, and a loaded
# machine stretches the gap). Each is equal when within its tolerance.
_TAP_CLOCK = "the tap's clock when it saw the request, codex's when it read it"
_ITEM_CLOCK = "the item's own start and end on the wire, codex's own instants around them"
TOLERANCES: dict[str, dict[str, tuple[int, str]]] = {
    "codex_turn_event": {"explicit_client_interrupt_requested_at_ms": (1000, _TAP_CLOCK)},
    "codex_turn_steer_event": {"created_at": (1, _TAP_CLOCK + " (seconds)")},
    "codex_review_event": {
        "completed_at_ms": (1000, "the tap's clock when it saw the client's answer"),
        "duration_ms": (1000, "the request's start on the wire to the tap seeing the answer"),
    },
    "codex_compaction_event": {
        "started_at": (1, _ITEM_CLOCK + " (seconds)"),
        "completed_at": (1, _ITEM_CLOCK + " (seconds)"),
        "duration_ms": (1000, _ITEM_CLOCK),
    },
    "codex_accepted_line_fingerprints": {
        "completed_at": (1, "the turn's completedAt on the wire; codex stamps the event a moment "
                            "later (seconds)"),
    },
    "codex_thread_archive_event": {
        "occurred_at_ms": (1000, "the tap's clock when it saw thread/archived or "
                                "thread/unarchived, codex's own when it handled the request"),
    },
    "codex_thread_initialized": {
        # Only for a spawned agent's thread (see tolerance_applies): its creation is not on the
        # wire, the spawn item's time is.
        "created_at": (1, "a spawned agent's thread: the spawn item's time (seconds)"),
    },
}


def tolerance_applies(event_type: str, key: str, params: dict[str, Any]) -> bool:
    if event_type == "codex_thread_initialized":
        return params.get("subagent_source") == "thread_spawn"
    return True


# Keys unobservable only under a condition codex's own events show; (event type, keys,
# reason, condition on the event and on every event codex posted in the session).
Condition = Callable[[dict[str, Any], list[Event]], bool]


def _code_mode_turn(params: dict[str, Any], session: list[Event]) -> bool:
    return any(event.get("event_type") == "codex_dynamic_tool_call_event"
               and (event.get("event_params") or {}).get("turn_id") == params.get("turn_id")
               and (event.get("event_params") or {}).get("tool_name") == "exec"
               for event in session)


def _v2_spawn(params: dict[str, Any], session: list[Event]) -> bool:
    return params.get("tool_name") == "spawn_agent" and any(
        event.get("event_type") == "codex_turn_event"
        and (event.get("event_params") or {}).get("turn_id") == params.get("turn_id")
        and (event.get("event_params") or {}).get("multi_agent_version") == "v2"
        for event in session)


CONDITIONAL: list[tuple[str, frozenset[str], str, Condition]] = [
    ("codex_turn_event", frozenset({"dynamic_tool_call_count", "total_tool_call_count"}),
     "a code-mode `exec` cell is no item on the wire: codex counts it as a dynamic tool call",
     _code_mode_turn),
    ("codex_collab_agent_tool_call_event",
     frozenset({"started_at_ms", "completed_at_ms", "duration_ms", "execution_duration_ms"}),
     "a v2 spawn_agent call has no item of its own; the agent's `started` activity item comes "
     "later", _v2_spawn),
]


def conditionally_unobservable(event_type: str, params: dict[str, Any],
                               session: list[Event]) -> frozenset[str]:
    keys: set[str] = set()
    for rule_type, rule_keys, _reason, condition in CONDITIONAL:
        if rule_type == event_type and condition(params, session):
            keys |= rule_keys
    return frozenset(keys)

# How an event is told apart from the others of its type (then by order among equals).
IDENTITY: dict[str, tuple[str, ...]] = {
    "codex_thread_initialized": ("thread_id", "initialization_mode"),
    "codex_turn_event": ("turn_id",),
    "codex_turn_steer_event": ("thread_id", "expected_turn_id"),
    "codex_compaction_event": ("thread_id", "turn_id"),
    "codex_review_event": ("thread_id", "review_id"),
    "codex_accepted_line_fingerprints": ("thread_id", "turn_id"),
    "codex_thread_archive_event": ("thread_id", "action"),
}
_TOOL_IDENTITY = ("thread_id", "item_id")


def unobservable_event(event: Event, wire_thread_ids: set[str]) -> str | None:
    """Why codex's event cannot be produced from the wire, or None when it can."""
    params = event.get("event_params") or {}
    if (event.get("event_type") == "codex_dynamic_tool_call_event"
            and params.get("tool_name") == "exec"):
        return "a code-mode `exec` cell is no item on the wire (only the tools it calls are)"
    if event.get("event_type") == "codex_thread_initialized":
        source = params.get("subagent_source")
        if source in ("review", "guardian") and params.get("thread_id") not in wire_thread_ids:
            return (f"codex starts a {source} subagent thread itself and never names it on the "
                    "wire")
    return None


def identity(event: Event) -> tuple[Any, ...]:
    event_type = event.get("event_type", "")
    params = event.get("event_params") or {}
    keys = IDENTITY.get(event_type, _TOOL_IDENTITY)
    return (event_type, *(params.get(key) for key in keys))


@dataclass
class Counts:
    equal: int = 0
    unobservable: int = 0
    different: int = 0

    def add(self, other: Counts) -> None:
        self.equal += other.equal
        self.unobservable += other.unobservable
        self.different += other.different


@dataclass
class Report:
    by_scenario: dict[str, Counts] = field(default_factory=lambda: defaultdict(Counts))
    differences: list[str] = field(default_factory=list)
    unobservable_events: list[str] = field(default_factory=list)

    @property
    def different(self) -> int:
        return sum(counts.different for counts in self.by_scenario.values())

    def table(self, title: str) -> str:
        width = max([len("scenario"), *(len(name) for name in self.by_scenario)])
        lines = [title, f"{'scenario':<{width}}  {'equal':>6} {'unobservable':>12} "
                        f"{'different':>9}"]
        total = Counts()
        for name in sorted(self.by_scenario):
            counts = self.by_scenario[name]
            total.add(counts)
            lines.append(f"{name:<{width}}  {counts.equal:>6} {counts.unobservable:>12} "
                         f"{counts.different:>9}")
        lines.append(f"{'total':<{width}}  {total.equal:>6} {total.unobservable:>12} "
                     f"{total.different:>9}")
        return "\n".join(lines)


def _paired(events: Iterable[Event]) -> dict[tuple[Any, ...], list[Event]]:
    groups: dict[tuple[Any, ...], list[Event]] = defaultdict(list)
    for event in events:
        groups[identity(event)].append(event)
    return groups


def _equal(event_type: str, key: str, ours: Any, theirs: Any,
           params: dict[str, Any]) -> bool:
    if ours == theirs:
        return True
    rule = TOLERANCES.get(event_type, {}).get(key)
    return (rule is not None and tolerance_applies(event_type, key, params)
            and isinstance(ours, int) and isinstance(theirs, int)
            and abs(ours - theirs) <= rule[0])


def compare(
    codex_events: list[Event],
    our_events: list[Event],
    scenario_of: Callable[[Event], str],
    wire_thread_ids: set[str],
) -> Report:
    """Every key of every event of both sides, counted per scenario."""
    report = Report()
    ours_by_id = _paired(our_events)
    seen: Counter[tuple[Any, ...]] = Counter()
    for theirs in codex_events:
        event_type = theirs["event_type"]
        params = theirs.get("event_params") or {}
        scenario = scenario_of(theirs)
        counts = report.by_scenario[scenario]
        key_id = identity(theirs)
        index = seen[key_id]
        seen[key_id] += 1
        candidates = ours_by_id.get(key_id, [])
        mine = candidates[index] if index < len(candidates) else None
        if mine is None:
            reason = unobservable_event(theirs, wire_thread_ids)
            if reason is not None:
                counts.unobservable += len(params)
                report.unobservable_events.append(f"{scenario}: {event_type} ({reason})")
            else:
                counts.different += len(params)
                report.differences.append(f"{scenario}: {event_type} {key_id[1:]} missing "
                                          "from ours")
            continue
        my_params = mine.get("event_params") or {}
        if list(my_params) != list(params):
            report.differences.append(f"{scenario}: {event_type} key order/set differs: ours "
                                      f"{list(my_params)} codex {list(params)}")
        unobservable = UNOBSERVABLE.get(event_type, {})
        conditional = conditionally_unobservable(event_type, params, codex_events)
        for key, value in params.items():
            if key in unobservable or key in conditional:
                counts.unobservable += 1
            elif key in my_params and _equal(event_type, key, my_params[key], value, params):
                counts.equal += 1
            else:
                counts.different += 1
                report.differences.append(
                    f"{scenario}: {event_type} {key}: ours "
                    f"{json.dumps(my_params.get(key, '<absent>'))} codex {json.dumps(value)}")
    # What we produced and codex did not post.
    theirs_count = Counter(identity(event) for event in codex_events)
    mine_seen: Counter[tuple[Any, ...]] = Counter()
    for mine in our_events:
        key_id = identity(mine)
        mine_seen[key_id] += 1
        if mine_seen[key_id] > theirs_count[key_id]:
            params = mine.get("event_params") or {}
            scenario = scenario_of(mine)
            report.by_scenario[scenario].different += len(params)
            report.differences.append(f"{scenario}: {mine['event_type']} {key_id[1:]} not "
                                      "posted by codex")
    return report


def scenario_lookup(thread_scenarios: dict[str, str],
                    events: Iterable[Event]) -> Callable[[Event], str]:
    """Events → scenario by thread id; subagent threads belong to their parent's scenario."""
    owners = dict(thread_scenarios)
    for event in events:
        params = event.get("event_params") or {}
        thread, parent = params.get("thread_id"), params.get("parent_thread_id")
        if thread and thread not in owners and parent in owners:
            owners[thread] = owners[parent]

    def scenario_of(event: Event) -> str:
        params = event.get("event_params") or {}
        return owners.get(params.get("thread_id") or "", "(no scenario)")

    return scenario_of


def wire_thread_ids(recording: Path) -> set[str]:
    """Every thread id the session's JSON-RPC lines mention (a thread codex never names on the
    wire cannot be the subject of our events)."""
    ids: set[str] = set()
    if not recording.exists():
        return ids
    for text in recording.read_text().splitlines():
        row = json.loads(text)
        if row.get("dir") not in ("c2s", "s2c"):
            continue
        _collect_ids(json.loads(row["raw"]), ids)
    return ids


def _collect_ids(value: Any, ids: set[str]) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            if key in ("threadId", "agentThreadId", "senderThreadId") and isinstance(child, str):
                ids.add(child)
            elif key == "thread" and isinstance(child, dict) and isinstance(child.get("id"), str):
                ids.add(child["id"])
            elif key == "receiverThreadIds" and isinstance(child, list):
                ids.update(item for item in child if isinstance(item, str))
            _collect_ids(child, ids)
    elif isinstance(value, list):
        for child in value:
            _collect_ids(child, ids)
