"""Helpers shared by the SDK session scripts (stdlib only; they run in the SDK venv).

A script is started as `<sdk-venv>/bin/python <script> SDK_SPEC.json`; the spec (written by
driver.py) has: command, env, cwd, client_name, control_url, expected_posts, events_timeout_s,
step_timeout_s, result_path. The script writes its result JSON to result_path.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def load_spec() -> dict[str, Any]:
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} SDK_SPEC.json")
    return dict(json.loads(Path(sys.argv[1]).read_text()))


def new_result(client: str) -> dict[str, Any]:
    return {
        "client": client,
        "error": None,
        "initialize": None,
        "thread_ids": [],
        "steps": [],
        "timings": {},
        "events_reached": None,
        "posts_seen": None,
        "peer_exit_code": None,
        "close_s": None,
    }


@contextlib.contextmanager
def step(result: dict[str, Any], name: str, **details: Any) -> Iterator[dict[str, Any]]:
    """Time one step; the body may add details to the yielded record."""
    record: dict[str, Any] = {"step": name, **details}
    started = time.monotonic()
    try:
        yield record
    finally:
        record["elapsed_s"] = round(time.monotonic() - started, 4)
        result["steps"].append(record)
        result["timings"][f"sdk:{len(result['steps'])}:{name}"] = record["elapsed_s"]


def wait_for_posts(spec: dict[str, Any], result: dict[str, Any]) -> None:
    """Block until the backend saw `expected_posts` codex analytics POSTs (long poll)."""
    count = int(spec["expected_posts"])
    timeout = float(spec["events_timeout_s"])
    url = f"{spec['control_url']}?count={count}&timeout={timeout}"
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout + 10) as response:
        answer = json.loads(response.read())
    result["timings"]["events_wait"] = round(time.monotonic() - started, 4)
    result["events_reached"] = bool(answer["reached"])
    result["posts_seen"] = int(answer["count"])
    if not answer["reached"]:
        raise TimeoutError(f"{answer['count']} of {count} analytics POSTs after {timeout} s")


def record_error(result: dict[str, Any], exc: BaseException) -> None:
    if result["error"] is None:
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
    traceback.print_exc()


def write_result(spec: dict[str, Any], result: dict[str, Any]) -> None:
    path = Path(spec["result_path"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str))
    tmp.replace(path)
