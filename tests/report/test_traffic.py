"""The generated traffic has the shape of real codex events, and the report's layer stays in
its place."""

from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

import codex_rpc_analytics
from tests.support import recorded_events
from tests.traffic import month_of_traffic

PACKAGE = Path(codex_rpc_analytics.__file__).parent


def keys(event: bytes) -> tuple[list[str], list[str]]:
    doc = json.loads(event)
    return list(doc), list(doc["event_params"])


def test_generated_events_have_the_keys_of_the_events_codex_sent() -> None:
    generated = [g.payload for g in month_of_traffic(3000, 1_796_200_000_000)]
    for event_type in ("codex_thread_initialized", "codex_turn_event"):
        real = recorded_events("fakeauth_full_flow", event_type)[0]
        mine = [e for e in generated if json.loads(e)["event_type"] == event_type]
        assert mine and all(keys(e) == keys(real) for e in mine), event_type


def test_a_month_of_traffic_looks_like_a_team() -> None:
    events = [json.loads(g.payload) for g in month_of_traffic(5000, 1_796_200_000_000)]
    turns = [e["event_params"] for e in events if e["event_type"] == "codex_turn_event"]
    by_type = Counter(e["event_type"] for e in events)
    assert {"codex_turn_steer_event", "skill_invocation", "codex_app_used",
            "codex_plugin_used"} <= set(by_type)
    assert len({t["app_server_client"]["product_client_id"] for t in turns}) >= 4
    assert len({t["model"] for t in turns}) >= 4
    statuses = Counter(t["status"] for t in turns)
    assert statuses["failed"] and statuses["interrupted"] and statuses[None]
    assert any(t["subagent_source"] for t in turns)
    assert all(t["total_tokens"] == t["input_tokens"] + t["output_tokens"] for t in turns)
    days = {t["completed_at"] // 86400 for t in turns if t["completed_at"]}
    assert len(days) >= 25


# Folders of the package the report must never import, and folders that must never import it.
def imported_folders(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "codex_rpc_analytics."):
            found.add(node.module.split(".")[1])
    return found


def test_the_report_imports_only_the_store_and_only_the_top_layers_import_it() -> None:
    for module in (PACKAGE / "report").rglob("*.py"):
        assert imported_folders(module) <= {"store"}, module
    for folder in ("core", "delivery", "adapters", "store"):
        for module in (PACKAGE / folder).rglob("*.py"):
            assert "report" not in imported_folders(module), module
