"""Run the scenario matrix live: each group through `codex-rpc-analytics proxy` around the real
codex 0.169.0, our events against the ones codex posted in the same run, key by key.

    .venv/bin/python -m tests.realpeer.matrix [--record] [--workdir DIR] [GROUP ...]

prints one table per group (scenario by equal / unobservable / different) and the differences.
`--record` writes each group's session (the proxy's `--record` transcript), the events codex
posted and which thread belongs to which scenario into tests/fixtures/transcripts/ as
`matrix_<group>.*`; the ordinary suite replays them (tests/adapters/test_matrix_fixtures.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conformance import Report, compare, scenario_lookup, wire_thread_ids
from tests.support import TRANSCRIPTS

from .scenarios import Group, groups
from .session import SessionResult, run_session

PROXY = Path(sys.executable).with_name("codex-rpc-analytics")
PARALLEL_GROUPS = 2  # the machine has two cores; a group is mostly codex waiting on its model


def proxied(codex_binary: Path) -> list[str]:
    return [str(PROXY), "proxy", "--sink", "jsonl:{workdir}/proxy-events.jsonl",
            "--state-dir", "{workdir}/state", "--record", "{workdir}/session.rpc.jsonl",
            "--", str(codex_binary), "app-server"]


@dataclass
class GroupRun:
    group: Group
    result: SessionResult
    codex: list[dict[str, Any]]
    ours: list[dict[str, Any]]
    replayed: list[bytes]
    proxy_lines: list[bytes]
    thread_scenarios: dict[str, str]
    report: Report

    @property
    def recording(self) -> Path:
        return self.result.workdir / "session.rpc.jsonl"


def thread_scenarios(result: SessionResult) -> dict[str, str]:
    owners: dict[str, str] = {}
    for step in result.raw.get("steps", []):
        if "thread_id" in step and "scenario" in step:
            owners.setdefault(step["thread_id"], step["scenario"])
    return owners


def replay(recording: Path) -> list[bytes]:
    completed = subprocess.run([str(PROXY), "replay", str(recording)], capture_output=True,
                               check=True, timeout=120)
    return completed.stdout.splitlines()


def run_group(group: Group, codex_binary: Path, workdir: Path) -> GroupRun:
    result = run_session(group.spec(proxied(codex_binary), str(workdir)))
    events_path = result.workdir / "proxy-events.jsonl"
    proxy_lines = events_path.read_bytes().splitlines() if events_path.exists() else []
    ours = [json.loads(line) for line in proxy_lines]
    codex = result.codex_events()
    owners = thread_scenarios(result)
    recording = result.workdir / "session.rpc.jsonl"
    replayed = replay(recording) if recording.exists() else []
    report = compare(codex, ours, scenario_lookup(owners, codex), wire_thread_ids(recording))
    if result.error is not None:
        report.differences.insert(0, f"session error: {result.error}")
    return GroupRun(group, result, codex, ours, replayed, proxy_lines, owners, report)


def run_groups(selected: Sequence[Group], codex_binary: Path, root: Path) -> list[GroupRun]:
    with ThreadPoolExecutor(PARALLEL_GROUPS) as pool:
        futures = [pool.submit(run_group, group, codex_binary, root / group.name)
                   for group in selected]
        return [future.result() for future in futures]


def fixture_stem(group: Group) -> str:
    return f"matrix_{group.name.replace('-', '_')}"


def record_fixture(run: GroupRun, directory: Path = TRANSCRIPTS) -> None:
    stem = fixture_stem(run.group)
    shutil.copyfile(run.recording, directory / f"{stem}.rpc.jsonl")
    with open(directory / f"{stem}.events.jsonl", "w", encoding="utf-8") as out:
        for event in run.codex:
            out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
    (directory / f"{stem}.scenarios.json").write_text(
        json.dumps({"group": run.group.name, "threads": run.thread_scenarios}, indent=1) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    from .peer_install import install_codex

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write tests/fixtures/ files")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("groups", nargs="*")
    args = parser.parse_args(argv)
    selected = [g for g in groups() if not args.groups or g.name in args.groups]
    root = Path(args.workdir or tempfile.mkdtemp(prefix="matrix-"))
    if root.exists():
        for group in selected:
            shutil.rmtree(root / group.name, ignore_errors=True)
    runs = run_groups(selected, install_codex(), root)
    failed = False
    for run in runs:
        print(run.report.table(f"\n== {run.group.name} ({run.result.workdir})"))
        for line in run.report.differences:
            print("  DIFF", line)
        failed |= bool(run.report.differences)
        if args.record:
            record_fixture(run)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
