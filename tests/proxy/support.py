"""Helpers for the proxy tests: the scripted server, a mixed-content session, the CLI."""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from tests.support import transcript

PYTHON = sys.executable
SCRIPTED = [PYTHON, "-m", "codex_rpc_analytics.examples.scripted_server"]
CLI = [PYTHON, "-m", "codex_rpc_analytics"]
BIG = 3 * 1024 * 1024


def scripted(script: Path, *options: str) -> list[str]:
    return [*SCRIPTED, str(script), *options]


def proxy(state_dir: Path, child: list[str], *flags: str) -> list[str]:
    return [*CLI, "proxy", "--state-dir", str(state_dir), *flags, "--", *child]


def _row(direction: str, line: bytes, t: float) -> str:
    try:
        return json.dumps({"t": t, "dir": direction, "raw": line.decode("utf-8")})
    except UnicodeDecodeError:
        return json.dumps({"t": t, "dir": direction,
                           "raw_b64": base64.b64encode(line).decode()})


def mixed_session(path: Path, name: str = "fakeauth_full_flow") -> Path:
    """A recorded session with foreign lines mixed in both ways: not JSON, invalid UTF-8,
    U+2028 inside a string, a CRLF line, and a multi-MB line each way."""
    rows = transcript(name).read_text().splitlines()
    blob = "A" * BIG
    extras_c2s = [
        b"this is not json",
        b"\xff\xfe not utf-8 \x80",
        '{"id":90,"method":"fs/readFile","params":{"path":"/tmp/\u2028x"}}'.encode(),
        b'{"id":91,"method":"fs/writeFile","params":{"dataBase64":"' + blob.encode() + b'"}}',
        b'{"method":"initialized"}\r',
    ]
    extras_s2c = [
        b"\x1b[?2004h",
        b"\xc3\x28 broken",
        '{"method":"item/agentMessage/delta","params":{"delta":"a\u2028b\u2029c"}}'.encode(),
        b'{"id":91,"result":{"data":"' + blob.encode() + b'"}}',
    ]
    out: list[str] = []
    inserted = False
    for text in rows:
        out.append(text)
        row = json.loads(text)
        if not inserted and row["dir"] == "s2c" and '"thread/started"' in row["raw"]:
            # after the first thread/started: client extras, then server extras answer them
            out.extend(_row("c2s", line, row["t"]) for line in extras_c2s)
            out.extend(_row("s2c", line, row["t"]) for line in extras_s2c)
            inserted = True
    assert inserted
    path.write_text("\n".join(out) + "\n")
    return path


def client_bytes(script_path: Path) -> bytes:
    from codex_rpc_analytics.examples.scripted_server import Script

    return b"".join(line + b"\n" for line in Script.load(script_path).client_lines())


def read_line(stream: IO[bytes], timeout: float = 10.0) -> bytes:
    """One line from a pipe, failing the test instead of hanging."""
    fd = stream.fileno()
    deadline = time.monotonic() + timeout
    data = bytearray()
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError(f"no complete line within {timeout} s (got {bytes(data)[:80]!r})")
        byte = os.read(fd, 1)
        if not byte:
            break
        data += byte
    return bytes(data)


def jsonl_events(path: Path, event_type: str | None = None) -> list[bytes]:
    if not path.exists():
        return []
    lines = path.read_bytes().splitlines()
    if event_type is None:
        return lines
    return [line for line in lines if json.loads(line)["event_type"] == event_type]


def replay(path: Path) -> list[bytes]:
    result = subprocess.run([*CLI, "replay", str(path)], capture_output=True, timeout=60,
                            check=True)
    return result.stdout.splitlines()
