"""Replay of the scenario-matrix sessions recorded from the real codex 0.169.0 (tests/realpeer/
test_matrix.py, `matrix_<group>.*` in tests/fixtures/transcripts/): our events equal the ones
codex posted in that session on every key, or the key is listed as unobservable
(tests/conformance.py). No codex is needed: this is the matrix's proof in the ordinary suite.
"""

from __future__ import annotations

import json

import pytest

from codex_rpc_analytics.adapters.replay import replay_transcript
from codex_rpc_analytics.core import RuntimeInfo
from codex_rpc_analytics.core.events import encode_event
from tests.conformance import compare, scenario_lookup, wire_thread_ids
from tests.support import TRANSCRIPTS

MATRIX = sorted(path.name.removesuffix(".rpc.jsonl")
                for path in TRANSCRIPTS.glob("matrix_*.rpc.jsonl"))
HOST = RuntimeInfo("0.0.0", "linux", "0", "x86_64")


def test_every_matrix_group_is_recorded() -> None:
    assert len(MATRIX) >= 8


@pytest.mark.parametrize("name", MATRIX)
def test_replay_matches_what_codex_posted(name: str) -> None:
    recording = TRANSCRIPTS / f"{name}.rpc.jsonl"
    warnings: list[str] = []
    ours = [json.loads(encode_event(event)) for event in replay_transcript(
        recording, transport=None, host_runtime=HOST, warn=warnings.append)]
    assert warnings == []
    codex = [json.loads(line) for line in
             (TRANSCRIPTS / f"{name}.events.jsonl").read_text().splitlines()]
    threads = json.loads((TRANSCRIPTS / f"{name}.scenarios.json").read_text())["threads"]
    report = compare(codex, ours, scenario_lookup(threads, codex), wire_thread_ids(recording))
    assert report.differences == []
    assert report.different == 0
    counted = {scenario for scenario, counts in report.by_scenario.items() if counts.equal}
    assert set(threads.values()) <= counted
