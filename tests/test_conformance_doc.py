"""docs/conformance.md and tests/conformance.py say the same: every key of every event type the
matrix compares is in the doc, in wire order, and the keys the comparison counts as
unobservable or compares within a clock tolerance are exactly the ones the doc says are."""

from __future__ import annotations

import re
from typing import get_type_hints

from codex_rpc_analytics.core.app_events import APP_EVENT_TYPES
from codex_rpc_analytics.core.events import EVENT_TYPES
from tests.conformance import TOLERANCES, UNOBSERVABLE, tolerance_applies
from tests.support import REPO

SECTION = re.compile(r"^### `([a-z_.]+)`$")
ROW = re.compile(r"^\| `([a-z0-9_]+)` \| ([a-z ]+) \|")
# Reported by a host through AnalyticsEventsClient: outside the wire matrix (the doc says so).
CLIENT_ONLY = {tag for tag in (t.__struct_config__.tag for t in APP_EVENT_TYPES)
               if tag != "codex_thread_archive_event"}


def documented() -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in (REPO / "docs" / "conformance.md").read_text().splitlines():
        section = SECTION.match(line)
        if section:
            current = tables.setdefault(section.group(1), {})
            continue
        row = ROW.match(line)
        if row and current is not None:
            current[row.group(1)] = row.group(2).strip()
    return tables


def params_keys(event_type: type) -> list[str]:
    """The event's params keys in wire order (its params struct's field order)."""
    return list(get_type_hints(event_type)["event_params"].__struct_fields__)


def test_every_wire_event_type_is_documented_key_by_key_in_wire_order() -> None:
    tables = documented()
    for event_type in EVENT_TYPES:
        tag = event_type.__struct_config__.tag
        if tag in CLIENT_ONLY:
            continue
        assert tag in tables, f"{tag} has no table in docs/conformance.md"
        assert list(tables[tag]) == params_keys(event_type), tag
        assert set(tables[tag].values()) <= {"observed", "derived", "clock",
                                             "unobservable"}, tag


def test_unobservable_and_clock_keys_agree_with_the_comparison() -> None:
    tables = documented()
    for tag, table in tables.items():
        unobservable = {key for key, kind in table.items() if kind == "unobservable"}
        assert unobservable == set(UNOBSERVABLE.get(tag, {})), tag
        clock = {key for key, kind in table.items() if kind == "clock"}
        always = {key for key in TOLERANCES.get(tag, {}) if tolerance_applies(tag, key, {})}
        assert clock == always, tag
