"""Replay's fast path (one row decode, the pre-filter on the row's text) against replay as it
was: every row read by ``read_rows``, every line encoded and tapped with no filter. Same events,
same stats, same warnings, on recorded sessions and on generated ones, with odd rows among them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from codex_rpc_analytics.adapters.replay import replay_transcript
from codex_rpc_analytics.adapters.transcript import CorruptRow, read_rows, row_bytes, session_meta
from codex_rpc_analytics.core import Analyzer, RuntimeInfo, encode_event
from codex_rpc_analytics.core.analyzer import AnalyzerStats
from tests.core.test_prefilter import RECORDED, sessions
from tests.support import RECORDED_SESSIONS

HOST = RuntimeInfo("host", "linux", "1.0.0", "x86_64")


def reference_replay(path: Path) -> tuple[list[bytes], AnalyzerStats, list[str]]:
    """Replay as it was before the fast path: every row through ``read_rows``, every line
    encoded and tapped, no filter."""
    warnings: list[str] = []
    base = now = session_meta(path).time_base
    analyzer = Analyzer(HOST, prefilter=False)
    connection = analyzer.open("stdio", 0)
    events = []
    with path.open("rb") as stream:
        for item in read_rows(stream):
            if isinstance(item, CorruptRow):
                warnings.append(f"{path}:{item.line_number}: corrupt transcript row skipped "
                                f"({item.reason})")
                continue
            number, row = item
            if row.dir not in ("c2s", "s2c"):
                continue
            try:
                line = row.raw.encode() if type(row.raw) is str else row_bytes(row)
            except ValueError as error:
                warnings.append(f"{path}:{number}: corrupt transcript row skipped ({error})")
                continue
            now = base + row.t
            events += analyzer.feed_line(connection, row.dir, line, now)  # type: ignore[arg-type]
    events += analyzer.finish(now)
    return [encode_event(event) for event in events], analyzer.stats(), warnings


def fast_replay(path: Path) -> tuple[list[bytes], AnalyzerStats, list[str]]:
    warnings: list[str] = []
    stats: list[AnalyzerStats] = []
    events = list(replay_transcript(path, transport="stdio", host_runtime=HOST,
                                    warn=warnings.append, stats_out=stats))
    return [encode_event(event) for event in events], stats[0], warnings


def transcript_text(lines: list[tuple[str, bytes]], extra_rows: list[bytes]) -> bytes:
    rows = [b'{"t": 0.0, "dir": "meta", "raw": "{\\"started_at\\": 1700000000.5}"}']
    for index, (direction, line) in enumerate(lines):
        try:
            raw = b'"raw": ' + json.dumps(line.decode()).encode()
        except UnicodeDecodeError:
            raw = b'"raw_b64": "%s"' % base64.b64encode(line)
        rows.append(b'{"t": %.3f, "dir": "%s", %s}' % (index / 10, direction.encode(), raw))
        if extra_rows and index % 5 == 0:
            rows.append(extra_rows[index % len(extra_rows)])
    return b"\n".join(rows) + b"\n"


ODD_ROWS = [
    b'{"t": 1.0, "dir": "stderr", "raw": "{\\"method\\":\\"turn/completed\\"}"}',
    b'{"t": 1.0, "dir": "sideways", "raw": "{}"}',
    b"not a row",
    b"   ",
    # A lone surrogate: text that cannot be encoded, a notification the filter must not skip.
    b'{"t": 1.0, "dir": "s2c", "raw": '
    b'"{\\"method\\":\\"item/agentMessage/delta\\",\\"x\\":\\"\\ud800\\"}"}',
    b'{"t": 1.0, "dir": "s2c"}',
    b'{"t": 1.0, "dir": "c2s", "raw_b64": "not base64!"}',
    b'{"t": 9.0, "dir": "s2c", "raw": "{\\"method\\":\\"item/plan/delta\\",\\"params\\":{}}"}',
]


def test_replay_of_recorded_sessions_matches_the_plain_replay(tmp_path: Path) -> None:
    for path in RECORDED_SESSIONS:
        assert fast_replay(path) == reference_replay(path), path.name
        odd = tmp_path / path.name
        odd.write_bytes(transcript_text(RECORDED[path.name], ODD_ROWS))
        assert fast_replay(odd) == reference_replay(odd), path.name


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(sessions())
def test_replay_of_generated_sessions_matches_the_plain_replay(
    tmp_path: Path, lines: list[tuple[str, bytes]],
) -> None:
    path = tmp_path / "generated.rpc.jsonl"
    path.write_bytes(transcript_text(lines, ODD_ROWS))
    assert fast_replay(path) == reference_replay(path)

