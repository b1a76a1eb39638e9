"""The scenario matrix against the real codex 0.169.0 (tests/realpeer/scenarios.py): every key of
every event codex posted is equal to ours, or listed as unobservable (tests/conformance.py);
none is different. The per-scenario table is printed at the end of the run.

With CODEX_RPC_ANALYTICS_RECORD_FIXTURES=1 the sessions are also written to tests/fixtures/
(`matrix_<group>.*`), which the ordinary suite replays without codex.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from codex_rpc_analytics.core.model_catalog import CATALOGS

from .conftest import MATRIX_TABLES
from .matrix import GroupRun, record_fixture, run_groups
from .scenarios import groups

pytestmark = pytest.mark.realpeer

RECORD_ENV = "CODEX_RPC_ANALYTICS_RECORD_FIXTURES"


@pytest.fixture(scope="module")
def matrix(netns_ok: None, codex_binary: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, GroupRun]:
    runs = run_groups(groups(), codex_binary, tmp_path_factory.mktemp("matrix"))
    for run in runs:
        MATRIX_TABLES.append(run.report.table(
            f"scenario matrix, group {run.group.name} (keys of codex's events)"))
        if os.environ.get(RECORD_ENV) == "1":
            record_fixture(run)
    return {run.group.name: run for run in runs}


@pytest.mark.parametrize("group", [group.name for group in groups()])
def test_every_key_equal_or_listed_unobservable(matrix: dict[str, GroupRun], group: str) -> None:
    run = matrix[group]
    assert run.result.error is None, run.result.error
    assert run.codex, "codex posted nothing"
    assert run.report.differences == []
    assert run.report.different == 0
    # Every scenario of the group was seen, and produced events.
    assert {scenario.name for scenario in run.group.scenarios} <= (
        set(run.report.by_scenario) | {"catalog-model-list"})


@pytest.mark.parametrize("group", [group.name for group in groups()])
def test_recording_replays_to_the_live_events(matrix: dict[str, GroupRun], group: str) -> None:
    run = matrix[group]
    assert run.replayed == run.proxy_lines


def test_model_catalog_table_is_what_model_list_reports(matrix: dict[str, GroupRun]) -> None:
    """The slugs, default efforts and multi-agent versions of core/model_catalog.py are the
    binary's own (model/list); a model without a version of its own is v1, as the turn events
    of the catalog group show."""
    run = matrix["catalog"]
    (listing,) = [step["result"] for step in run.result.raw["steps"]
                  if step.get("op") == "model/list"]
    assert listing["nextCursor"] is None
    listed = {model["model"]: model for model in listing["data"]}
    table = CATALOGS["0.169.0"].models
    assert set(listed) == set(table)
    for slug, defaults in table.items():
        assert defaults.reasoning_effort == listed[slug]["defaultReasoningEffort"], slug
        assert defaults.multi_agent_version == (listed[slug]["multiAgentVersion"] or "v1"), slug


def test_matrix_fixtures_are_recorded(matrix: dict[str, GroupRun]) -> None:
    """Every group has its recording among the fixtures the ordinary suite replays."""
    from tests.support import TRANSCRIPTS

    from .matrix import fixture_stem

    for run in matrix.values():
        stem = fixture_stem(run.group)
        assert (TRANSCRIPTS / f"{stem}.rpc.jsonl").exists(), stem
        recorded = json.loads((TRANSCRIPTS / f"{stem}.scenarios.json").read_text())
        assert recorded["group"] == run.group.name
