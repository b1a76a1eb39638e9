"""`codex-rpc-analytics example`: the real pipeline on the bundled session, no codex needed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from codex_rpc_analytics.cli.example_command import example_transcript
from tests.proxy.support import CLI, replay


def test_example_runs_the_proxy_end_to_end_and_prints_its_events() -> None:
    result = subprocess.run([*CLI, "example"], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    events = result.stdout.splitlines()
    assert events == replay(example_transcript())
    assert {json.loads(line)["event_type"] for line in events} >= {"codex_thread_initialized"}
    assert b"byte for byte" in result.stderr and result.stderr.count(b"\n") == 1


def test_example_ignores_the_users_config_file(tmp_path: Path) -> None:
    """The example's events are no one's: a user's config (sinks, or analytics turned off)
    neither receives them nor empties the example."""
    config = tmp_path / "config.toml"
    config.write_text("enabled = false\n")
    env = {**os.environ, "CODEX_RPC_ANALYTICS_CONFIG": str(config)}
    result = subprocess.run([*CLI, "example"], capture_output=True, timeout=60, check=False,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == replay(example_transcript())
