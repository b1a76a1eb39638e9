"""Shared test helpers: where the recorded real traffic lives, and how to read it."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def another_writer_while_connecting(path: Path) -> Iterator[list[sqlite3.Connection]]:
    """Inside the block, whoever connects to the SQLite file ``path`` does so while another
    connection holds the file's write lock, as a second process opening the same new file at
    the same moment does; the lock goes when the connection, its PRAGMAs set, runs its first
    other statement (which waits for a write lock under busy_timeout). Yields the writers."""
    connect = sqlite3.connect
    writers: list[sqlite3.Connection] = []
    writing: list[sqlite3.Connection] = []

    class Connecting(sqlite3.Connection):
        def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:
            if writing and not sql.lstrip().upper().startswith("PRAGMA"):
                writing.pop().execute("COMMIT")  # the other process is done writing
            return super().execute(sql, parameters)  # type: ignore[arg-type]

    def connect_while_another_writes(database: object, *args: object,
                                     **kwargs: object) -> sqlite3.Connection:
        if database != path:  # not the file itself (e.g. a draft of it)
            return connect(database, *args, **kwargs)  # type: ignore[arg-type]
        writer = connect(path, isolation_level=None, check_same_thread=False)
        writer.execute("PRAGMA busy_timeout = 5000")
        writer.execute("BEGIN IMMEDIATE")
        writers.append(writer)
        writing.append(writer)
        return connect(database, *args, factory=Connecting, **kwargs)  # type: ignore[misc]

    sqlite3.connect = connect_while_another_writes  # type: ignore[assignment]
    try:
        yield writers
    finally:
        sqlite3.connect = connect
        for writer in writers:
            writer.close()
