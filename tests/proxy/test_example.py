"""`codex-rpc-analytics example`: the real pipeline on the bundled session, no codex needed."""

from __future__ import annotations

import json
import subprocess

from codex_rpc_analytics.cli.example_command import example_transcript
from tests.proxy.support import CLI, replay


def test_example_runs_the_proxy_end_to_end_and_prints_its_events() -> None:
    result = subprocess.run([*CLI, "example"], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    events = result.stdout.splitlines()
    assert events == replay(example_transcript())
    assert {json.loads(line)["event_type"] for line in events} >= {"codex_thread_initialized"}
    assert b"byte for byte" in result.stderr and result.stderr.count(b"\n") == 1
