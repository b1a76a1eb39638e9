"""The tap classifies inline (no ``Message`` objects, its hot path) by ``classify``'s rules,
reads a line held as text exactly as its UTF-8 bytes (replay hands it the row's text), and
takes a notification the pre-filter's probe decoded (``Tap.notification``) exactly as it takes
the line.

Every line of every recorded session, and of generated sessions full of look-alikes (escaped
``id``, null ids, second ``method`` members, truncated lines, invalid UTF-8, arrays), must be
counted as the kind ``classify`` gives it, tapping text must give the same facts and stats as
tapping bytes, and a probed notification the same as its line.
"""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, given, settings

from codex_rpc_analytics.core.envelope import Kind, classify
from codex_rpc_analytics.core.prefilter import NotificationFilter
from codex_rpc_analytics.core.tap import Tap, TapStats
from tests.core.test_prefilter import RECORDED, sessions

COUNTER_OF_KIND = {
    Kind.REQUEST: "requests",
    Kind.NOTIFICATION: "notifications",
    Kind.RESPONSE: "responses",
    Kind.ERROR: "errors",
    Kind.NOT_JSON: "not_json",
    Kind.NOT_ENVELOPE: "not_envelope",
}
ODD_LINES = [
    b'{"id":1,"result":{},"error":{}}',  # both: a response (result wins)
    b'{"id":1,"error":{"code":1,"message":"m"}}',
    b'{"id":null,"result":{}}',  # a null id answers nothing
    b'{"id":1}',
    b'{"id":1.5,"method":"x"}',  # a float id: the wrong shape
    b'{"method":7}',
    b'{"method":null,"id":2,"result":1}',
    b"[]",
    b"null",
    b"",
    b"{",
    b'{"id":"a","method":"turn/start","params":[]}',
    b'{"id":3,"method":"thread/start","params":{}} x',
    b'{"method":"thread/started","params":{"thread":{"id":"t"}},"id":null}',
]


def counted_kinds(lines: list[tuple[str, bytes]]) -> list[str]:
    """The counter the tap moved for each line, fed in order to one tap."""
    tap = Tap(0, "stdio")
    kinds = []
    for index, (direction, line) in enumerate(lines):
        before = msgspec.structs.asdict(tap.stats)
        tap.observe(direction, line, float(index))  # type: ignore[arg-type]
        after = msgspec.structs.asdict(tap.stats)
        moved = [name for name in COUNTER_OF_KIND.values() if after[name] != before[name]]
        assert len(moved) == 1, (line, moved)
        kinds.append(moved[0])
    return kinds


def tapped(lines: list[tuple[str, bytes | str]]) -> tuple[list[bytes], TapStats]:
    tap = Tap(0, "stdio")
    facts = []
    for index, (direction, line) in enumerate(lines):
        facts += tap.observe(direction, line, float(index))  # type: ignore[arg-type]
    return [msgspec.json.encode(fact) for fact in facts], tap.stats


def probed(lines: list[tuple[str, bytes]]) -> tuple[list[bytes], TapStats, int]:
    """``tapped``, with every line the probe finds to be a notification (no ``id``, a string
    ``method``) handed to ``Tap.notification`` instead, as replay does."""
    tap = Tap(0, "stdio")
    facts = []
    handed = 0  # facts from lines handed to Tap.notification
    for index, (direction, line) in enumerate(lines):
        try:
            probe = NotificationFilter.probe_text(line.decode())
        except UnicodeDecodeError:
            probe = None
        if probe is not None and probe.id is msgspec.UNSET and probe.method is not None:
            notified = tap.notification(direction, probe.method, probe.params,  # type: ignore[arg-type]
                                        float(index))
            handed += len(notified)
            facts += notified
        else:
            facts += tap.observe(direction, line, float(index))  # type: ignore[arg-type]
    return [msgspec.json.encode(fact) for fact in facts], tap.stats, handed


def check(lines: list[tuple[str, bytes]]) -> None:
    assert counted_kinds(lines) == [COUNTER_OF_KIND[classify(line).kind] for _, line in lines]
    *with_probe, _ = probed(lines)
    assert tuple(with_probe) == tapped(list(lines))  # type: ignore[arg-type]
    as_text: list[tuple[str, bytes | str]] = []
    for direction, line in lines:
        try:
            as_text.append((direction, line.decode()))
        except UnicodeDecodeError:
            as_text.append((direction, line))  # replay holds such a line as bytes
    assert tapped(as_text) == tapped(list(lines))  # type: ignore[arg-type]


def test_recorded_and_odd_lines_are_counted_as_classify_says() -> None:
    for lines in RECORDED.values():
        check(lines + [(direction, line) for line in ODD_LINES for direction in ("c2s", "s2c")])
    all_lines = [line for lines in RECORDED.values() for line in lines]
    assert probed(all_lines)[2] > 20  # facts from notifications the tap read off the probe
    assert {"requests", "responses", "errors", "not_json", "not_envelope"} <= set(
        counted_kinds([(d, line) for line in ODD_LINES for d in ("c2s", "s2c")]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_generated_lines_are_counted_as_classify_says(lines: list[tuple[str, bytes]]) -> None:
    check(lines)
