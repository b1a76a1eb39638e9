"""Fixtures for the delivery tests: fabricated codex homes, fast retries, a collector."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_rpc_analytics.delivery import RetryPolicy
from tests.delivery.support import Collector, write_chatgpt_auth


@pytest.fixture
def codex_home(tmp_path: Path) -> Path:
    """A CODEX_HOME with a fabricated ChatGPT login and no config.toml."""
    home = tmp_path / "codex-home"
    write_chatgpt_auth(home)
    return home


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def fast_policy() -> RetryPolicy:
    return RetryPolicy(
        base_s=0.02, cap_s=0.1, retry_after_cap_s=0.3, timeout_total_s=5.0, timeout_connect_s=1.0
    )


@pytest.fixture
def collector() -> Collector:
    return Collector()
