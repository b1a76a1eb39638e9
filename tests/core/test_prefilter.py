"""The notification pre-filter is exact: with it and without it, the same events and the same
stats, on every recorded session and on generated ones full of look-alikes.

Generated sessions mix the recorded lines (so threads and turns exist) with notifications of
every method codex 0.169.0's server sends, in codex's own shape and in shapes meant to fool a
byte-level test: an ``id`` written with escapes, a second ``method`` member, an escaped method
name, truncated lines, invalid UTF-8, leading blanks, trailing garbage. A method the tap reads
that the filter did not hear of (a handler added outside the tap's table, say) shows up here as
different events or stats.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_rpc_analytics.core import Analyzer, RuntimeInfo, encode_event
from codex_rpc_analytics.core.prefilter import NotificationFilter
from codex_rpc_analytics.core.tap import Tap
from tests.support import RECORDED_SESSIONS

HOST = RuntimeInfo("host", "linux", "1.0.0", "x86_64")

# Every server notification of codex 0.169.0 (app-server schema, ServerNotification).
SERVER_NOTIFICATIONS = (
    "error", "thread/started", "thread/status/changed", "thread/readState/changed",
    "thread/archived", "thread/deleted", "thread/unarchived", "thread/closed",
    "thread/reverted", "skills/changed", "thread/name/updated", "thread/section/changed",
    "thread/attachment/updated", "thread/goal/updated", "thread/prediction/updated",
    "thread/goal/cleared", "thread/queue/changed", "project/changed", "thread/project/updated",
    "thread/environment/connected", "thread/environment/disconnected",
    "thread/settings/updated", "thread/tokenUsage/updated", "turn/started", "hook/started",
    "turn/completed", "hook/completed", "turn/diff/updated", "turn/plan/updated",
    "item/started", "item/autoApprovalReview/started", "item/autoApprovalReview/completed",
    "autoApprovalReview/strictReviewRequired", "item/completed", "item/agentMessage/delta",
    "item/plan/delta", "command/exec/outputDelta", "process/outputDelta", "process/exited",
    "item/commandExecution/outputDelta", "item/commandExecution/terminalInteraction",
    "item/fileChange/outputDelta", "item/fileChange/patchUpdated", "serverRequest/resolved",
    "item/mcpToolCall/progress", "mcpServer/oauthLogin/completed",
    "mcpServer/startupStatus/updated", "mcpServer/event/stream/notification",
    "account/updated", "account/gatewayOAuth/changed", "account/rateLimits/updated",
    "app/list/updated", "remoteControl/status/changed", "externalAgentConfig/import/progress",
    "externalAgentConfig/import/completed", "fs/changed", "item/reasoning/summaryTextDelta",
    "item/reasoning/summaryPartAdded", "item/reasoning/textDelta", "thread/compacted",
    "model/rerouted", "model/verification", "modelProvider/authRecoveryStarted",
    "modelProvider/authRecoveryCompleted", "turn/moderationMetadata",
    "model/safetyBuffering/updated", "warning", "guardianWarning", "deprecationNotice",
    "configWarning", "fuzzyFileSearch/sessionUpdated", "fuzzyFileSearch/sessionCompleted",
    "thread/realtime/started", "thread/realtime/itemAdded", "thread/realtime/item/started",
    "thread/realtime/item/transcript/delta", "thread/realtime/item/completed",
    "thread/realtime/transcript/delta", "thread/realtime/transcript/done",
    "thread/realtime/outputAudio/delta", "thread/realtime/sdp", "thread/realtime/error",
    "thread/realtime/closed", "windows/worldWritableWarning", "windowsSandbox/setupCompleted",
    "account/login/completed",
)


def wire(path: Path) -> list[tuple[str, bytes]]:
    rows = [json.loads(text) for text in path.read_text().splitlines()]
    return [(row["dir"], row["raw"].encode()) for row in rows
            if row["dir"] in ("c2s", "s2c") and isinstance(row.get("raw"), str)]


RECORDED = {path.name: wire(path) for path in RECORDED_SESSIONS}
ALL_LINES = [item for lines in RECORDED.values() for item in lines]
# Params codex really sent with its notifications: threads, turns, items, usage, deltas.
REAL_PARAMS = sorted({bytes(msgspec.json.decode(line, type=dict[str, msgspec.Raw])["params"])
                      for _, line in ALL_LINES
                      if line.startswith(b'{"method"') and b'"params"' in line})


def analyse(lines: list[tuple[str, bytes]], prefilter: bool) -> tuple[list[bytes], Any]:
    analyzer = Analyzer(HOST, prefilter=prefilter)
    connection = analyzer.open("stdio")
    events = []
    for index, (direction, line) in enumerate(lines):
        events += analyzer.feed_line(connection, direction, line, 1.0 + index)  # type: ignore[arg-type]
    events += analyzer.finish(1.0 + len(lines))
    return [encode_event(event) for event in events], msgspec.to_builtins(analyzer.stats())


def framed(lines: list[tuple[str, bytes]], prefilter: bool) -> tuple[list[bytes], Any]:
    """The same lines as relayed byte streams (the proxy's path: framing, then the filter)."""
    analyzer = Analyzer(HOST, prefilter=prefilter)
    connection = analyzer.open("stdio")
    events = []
    for index, (direction, line) in enumerate(lines):
        data = line + b"\n"
        for chunk in (data[: index % 7], data[index % 7 :]):
            if chunk:
                events += analyzer.feed(connection, direction, chunk, 1.0 + index)  # type: ignore[arg-type]
    events += analyzer.finish(1.0 + len(lines))
    return [encode_event(event) for event in events], msgspec.to_builtins(analyzer.stats())


def test_every_recorded_session_gives_the_same_events_and_stats_with_the_filter() -> None:
    skipped = 0
    for name, lines in RECORDED.items():
        with_filter = analyse(lines, prefilter=True)
        assert with_filter == analyse(lines, prefilter=False), name
        assert framed(lines, prefilter=True) == with_filter, name
        skipped += sum(NotificationFilter(Tap(0, "stdio").notification_methods).ignorable(line)
                       for _, line in lines)
    assert skipped > 50  # the filter did take lines out


def test_the_tap_reads_only_what_its_handler_table_names() -> None:
    methods = Tap(0, "stdio").notification_methods
    assert {"thread/started", "turn/started", "turn/completed", "item/completed"} <= methods
    assert "item/agentMessage/delta" not in methods


def look_alikes(method: str, params: bytes) -> list[bytes]:
    """A notification of ``method`` in codex's shape and in shapes a byte test could misread."""
    name = json.dumps(method).encode()
    canonical = b'{"method":%s,"params":%s,"emittedAtMs":1795607174482}' % (name, params)
    return [
        canonical,
        b'{"method":%s,"params":%s}' % (name, params),
        b'{"method":%s,"id":7,"params":%s}' % (name, params),  # a request
        b'{"method":%s,"params":%s,"id":null}' % (name, params),  # a null id: notification
        b'{"method":%s,"params":%s,"\\u0069d":8}' % (name, params),  # an escaped "id"
        b'{"method":%s,"params":%s,"method":"turn/completed"}' % (name, params),
        b'{"method":"turn/completed","params":%s,"method":%s}' % (params, name),
        b'{"method":%s,"params":%s}' % (name.replace(b"/", b"\\/"), params),
        canonical[: len(canonical) // 2],  # truncated
        canonical[:-1] + b',"x":"\xff\xfe"}',  # invalid UTF-8 in a member nobody reads
        canonical + b" trailing",
        b" " + canonical,
        b'{"method":%s,"params":%s,"emittedAtMs":1.5e3' % (name, params) + b"}" * 2,
        b'{"method":%s}' % name,
        b'[{"method":%s}]' % name,
    ]


@st.composite
def sessions(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    base = draw(st.sampled_from(sorted(RECORDED)))
    lines = list(RECORDED[base])
    for _ in range(draw(st.integers(0, 40))):
        method = draw(st.one_of(st.sampled_from(SERVER_NOTIFICATIONS),
                                st.text(min_size=0, max_size=12)))
        params = draw(st.one_of(st.sampled_from(REAL_PARAMS),
                                st.sampled_from([b"{}", b"null", b"[1,2]", b'"x"'])))
        shapes = look_alikes(method, params)
        line = shapes[draw(st.integers(0, len(shapes) - 1))]
        direction = draw(st.sampled_from(["s2c", "s2c", "s2c", "c2s"]))
        lines.insert(draw(st.integers(0, len(lines))), (direction, line))
    for _ in range(draw(st.integers(0, 10))):  # recorded lines out of place, or twice
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(ALL_LINES)))
    return lines


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_generated_sessions_give_the_same_events_and_stats_with_the_filter(
    lines: list[tuple[str, bytes]],
) -> None:
    with_filter = analyse(lines, prefilter=True)
    assert with_filter == analyse(lines, prefilter=False)
    assert framed(lines, prefilter=True) == with_filter
