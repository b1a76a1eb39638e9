"""Shared test helpers: where the recorded real traffic lives, and how to read it."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
TRANSCRIPTS = REPO / "tests" / "fixtures" / "transcripts"


def unavailable(reason: str, required: str) -> NoReturn:
    """A real component a test needs cannot run here: skip with the one-line ``reason``, or,
    under CI=true (where .ci/run installs it), fail with ``required: reason``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{required}: {reason}", pytrace=False)
    pytest.skip(reason)


def transcript(name: str) -> Path:
    return TRANSCRIPTS / f"{name}.rpc.jsonl"


def recorded_events(name: str, event_type: str | None = None) -> list[bytes]:
    """The exact event lines codex 0.169.0 posted for a session, as bytes."""
    lines = (TRANSCRIPTS / f"{name}.events.jsonl").read_bytes().splitlines()
    if event_type is None:
        return lines
    return [line for line in lines if json.loads(line)["event_type"] == event_type]


def wire_lines(name: str) -> list[tuple[str, bytes]]:
    """(direction, exact line) of every c2s/s2c row of a transcript, in order."""
    rows = []
    for text in transcript(name).read_text().splitlines():
        row = json.loads(text)
        if row["dir"] in ("c2s", "s2c"):
            rows.append((row["dir"], row["raw"].encode()))
    return rows


ALL_TRANSCRIPTS = sorted(path.name.removesuffix(".rpc.jsonl")
                         for path in TRANSCRIPTS.glob("*.rpc.jsonl"))
# Every session recorded from the real codex, including the streaming one (deltas) that the
# replay bench keeps out of its fixture mix.
STREAMING = REPO / "tests" / "fixtures" / "streaming"
RECORDED_SESSIONS = sorted([*TRANSCRIPTS.glob("*.rpc.jsonl"), *STREAMING.glob("*.rpc.jsonl")])


def replayed_events() -> list[bytes]:
    """Every event the tool derives from every recorded session, encoded as it ships them."""
    from codex_rpc_analytics.adapters.replay import replay_transcript
    from codex_rpc_analytics.core.events import encode_event
    from codex_rpc_analytics.host import host_runtime

    def warn(message: str) -> None:
        raise AssertionError(message)

    return [
        encode_event(event)
        for name in ALL_TRANSCRIPTS
        for event in replay_transcript(transcript(name), transport=None,
                                       host_runtime=host_runtime(), warn=warn)
    ]


T = TypeVar("T")


def returns_within(call: Callable[[], T], bound: float = 60.0) -> T:
    """``call()``'s result, from a daemon thread; fails (instead of hanging the suite) when it
    has not returned after ``bound`` seconds, which only a blocked call takes."""
    results: list[T] = []
    thread = threading.Thread(target=lambda: results.append(call()), daemon=True)
    thread.start()
    thread.join(bound)
    assert not thread.is_alive(), f"still blocked after {bound:.0f} s"
    assert results, "the call raised (see the thread's traceback above)"
    return results[0]
