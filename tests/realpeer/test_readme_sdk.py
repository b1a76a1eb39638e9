"""The README's official-SDK snippet, run as written against the real codex 0.169.0.

It is the user's program: in the SDK's Python 3.12 venv, with `codex-rpc-analytics` and `codex`
(the real binary from npm) on PATH and a ChatGPT login against the loopback stand-in backend,
inside the loopback-only namespace (`run_session`). It must print the model's answer, and the
proxy it launched must have committed the thread's and the turn's events to its outbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import BLOCKS

from .session import SessionSpec, run_session

SDK_BLOCKS = [block for block in BLOCKS if block.lang == "python" and "openai_codex" in block.text]
CLI = Path(sys.executable).with_name("codex-rpc-analytics")


def test_the_readme_has_an_sdk_snippet() -> None:
    assert SDK_BLOCKS, "the README's official-SDK example is gone"


@pytest.mark.parametrize("block", SDK_BLOCKS, ids=lambda b: f"line{b.line}")
def test_readme_sdk_snippet_runs_as_written(
    netns_ok: None, codex_binary: Path, sdk_python: Path, tmp_path: Path, block: object,
) -> None:
    workdir = tmp_path / "s"
    bin_dir = workdir / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "codex").symlink_to(codex_binary)
    snippet = workdir / "snippet.py"
    snippet.write_text(block.text)  # type: ignore[attr-defined]
    config = workdir / "config.toml"
    config.write_text("")  # every default: the outbox only
    state_dir = workdir / "state"
    spec = SessionSpec(
        command=["unused: the snippet starts its own command"],
        client="readme-snippet",
        sdk_python=str(sdk_python),
        sdk_options={"snippet": str(snippet)},
        workdir=str(workdir),
        env={"PATH": os.pathsep.join([str(bin_dir), str(CLI.parent), os.environ["PATH"]]),
             "CODEX_RPC_ANALYTICS_STATE_DIR": str(state_dir),
             "CODEX_RPC_ANALYTICS_CONFIG": str(config)},
    )
    result = run_session(spec)
    assert result.error is None, f"{result.error}\n{result.sdk.get('printed')}"
    assert result.sdk["printed"] == "ok from fake model\n"  # the stand-in model's answer
    events = subprocess.run([str(CLI), "events", "--state-dir", str(state_dir)],
                            capture_output=True, text=True, timeout=60, check=True)
    by_type = [json.loads(line)["event_type"] for line in events.stdout.splitlines()]
    assert "codex_thread_initialized" in by_type and "codex_turn_event" in by_type, by_type
    turns = [json.loads(line)["event_params"] for line in events.stdout.splitlines()
             if json.loads(line)["event_type"] == "codex_turn_event"]
    assert [turn["status"] for turn in turns] == ["completed"]
