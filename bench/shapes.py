"""Real-shaped codex sessions of any length, for the benches.

Every line is a template cut from ``tests/fixtures/streaming/fakeauth_streaming_deltas``, a
session recorded from the real codex 0.169.0 with a streaming model (reasoning summary and
agent message deltas), with its thread id, turn id and request id made variables. A turn has
the recorded turn's lines, in the recorded order, with ``reasoning_deltas`` reasoning summary
deltas and ``agent_deltas`` agent message deltas (100 + 25 by default: 87% of a turn's lines are
``item/*`` deltas, as in real sessions) and, in the middle, a ``turn/steer`` and its answer
(codex has no recorded steer here; its shape follows the app-server schema). A thread is
``thread/start``, its result, ``thread/started``, an MCP status line, then its turns.

Ids are deterministic (the n-th thread, the n-th turn), so a client and a scripted server
that generate the same session agree on them without talking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECORDING = REPO / "tests" / "fixtures" / "streaming" / "fakeauth_streaming_deltas.rpc.jsonl"
RECORDED_THREAD = "01a2371b-df3c-7fe3-9f37-d734df4a3a7b"
RECORDED_TURN = "01a2371b-dfb2-7631-82ca-42d917b372b3"

# Words a model streams, one or a few per delta; some need JSON escapes, some are not ASCII.
_WORDS = ("the", " answer", " is", " `ls -la`", " in", " the", " repository", "'s", " root",
          ".\n\n", "Let", " me", " check", " \"src/main.py\"", " first", ":", " caf\u00e9",
          " \u2192", " done", " \u2014", " tests", " pass", "\n-", " item", " 42", ",", " ok")


def _rows() -> list[tuple[str, str]]:
    rows = []
    for text in RECORDING.read_text().splitlines():
        row = json.loads(text)
        if row["dir"] in ("c2s", "s2c"):
            rows.append((row["dir"], row["raw"]))
    return rows


def _template(line: str) -> bytes:
    """A recorded line with its ids as ``%(t)s`` (thread), ``%(u)s`` (turn), ``%(i)s``
    (request id) and ``%(d)s`` (a delta's text, already JSON-escaped)."""
    text = line.replace("%", "%%").replace(RECORDED_THREAD, "%(t)s")
    text = text.replace(RECORDED_TURN, "%(u)s")
    if text.startswith('{"id":'):
        text = '{"id":%(i)s,' + text.split(",", 1)[1]
    if '"delta":"' in text:
        head, rest = text.split('"delta":"', 1)
        text = head + '"delta":"%(d)s"' + rest.split('"', 1)[1]
    return text.encode()


class Shapes:
    """Line templates, and the blocks a session is made of."""

    def __init__(self, agent_deltas: int = 100, reasoning_deltas: int = 25) -> None:
        rows = _rows()
        first: dict[str, bytes] = {}
        for direction, raw in rows:
            key = direction + ":" + _key(raw)
            first.setdefault(key, _template(raw))
        self.initialize = first["c2s:initialize"]
        self.initialized = first["c2s:initialized"]
        self.initialize_result = _template(rows[1][1])
        self.thread_start = (b'{"id":%(i)s,"method":"thread/start",'
                             b'"params":{"cwd":"/home/dev/project"}}')
        self.thread_result = first["s2c:result:thread"]
        self.thread_started = first["s2c:thread/started"]
        self.mcp_status = first["s2c:mcpServer/startupStatus/updated"]
        self.turn_start = first["c2s:turn/start"]
        self.turn_steer = (b'{"id":%(i)s,"method":"turn/steer","params":{"threadId":"%(t)s",'
                           b'"input":[{"type":"text","text":"also run the tests",'
                           b'"text_elements":[]}],"expectedTurnId":"%(u)s"}}')
        self.steer_result = b'{"id":%(i)s,"result":{"turnId":"%(u)s"}}'
        self.turn_result = first["s2c:result:turn"]
        turn = _recorded_turn(rows)
        reasoning_delta = first["s2c:item/reasoning/summaryTextDelta"]
        agent_delta = first["s2c:item/agentMessage/delta"]
        # The recorded turn, its deltas replaced by as many as asked for.
        before: list[bytes] = []
        for raw in turn:
            method = _key(raw)
            if method == "item/reasoning/summaryTextDelta":
                if reasoning_delta not in before:
                    before.extend([reasoning_delta] * reasoning_deltas)
                continue
            if method == "item/agentMessage/delta":
                if agent_delta not in before:
                    before.extend([agent_delta] * agent_deltas)
                continue
            before.append(_template(raw))
        half = len(before) - 6 - agent_deltas // 2  # the steer lands mid-message
        self.turn_first, self.turn_second = before[:half], before[half:]
        self.deltas = [json.dumps(a + b, ensure_ascii=False)[1:-1]
                       for a in _WORDS for b in _WORDS[::3]]

    # -- ids ------------------------------------------------------------------------------------

    @staticmethod
    def thread_id(n: int) -> bytes:
        return b"01a2371b-%04x-7000-8000-%012x" % (n & 0xFFFF, n)

    @staticmethod
    def turn_id(n: int) -> bytes:
        return b"01a2371b-%04x-7000-9000-%012x" % (n & 0xFFFF, n)

    # -- blocks ---------------------------------------------------------------------------------

    def fill(self, templates: list[bytes], thread: bytes, turn: bytes, start: int) -> list[bytes]:
        """Lines of ``templates`` for this thread and turn; deltas cycle from ``start``."""
        deltas = self.deltas
        out = []
        values = {b"t": thread, b"u": turn, b"i": b"0", b"d": b""}
        index = start
        for template in templates:
            if b"%(d)s" in template:
                values[b"d"] = deltas[index % len(deltas)].encode()
                index += 1
            out.append(template % values)
        return out

    def block(self, templates: list[bytes], start: int) -> bytes:
        """``templates`` as one template of whole lines (``%(t)s``, ``%(u)s``, ``%(i)s`` left
        in), deltas filled in from ``start``: a scripted server formats a block at once."""
        keep = {b"t": b"%(t)s", b"u": b"%(u)s", b"i": b"%(i)s"}
        lines = []
        index = start
        for template in templates:
            values = dict(keep)
            if b"%(d)s" in template:
                delta = self.deltas[index % len(self.deltas)].encode()
                values[b"d"] = delta.replace(b"%", b"%%")
                index += 1
            lines.append(template % values)
        return b"".join(line + b"\n" for line in lines)

    def request(self, template: bytes, request_id: int, thread: bytes = b"",
                turn: bytes = b"") -> bytes:
        return template % {b"i": b"%d" % request_id, b"t": thread, b"u": turn}


def _key(raw: str) -> str:
    message = json.loads(raw)
    if "method" in message:
        return str(message["method"])
    result = message.get("result") or {}
    return "result:" + ("thread" if "thread" in result else "turn" if "turn" in result else "?")


def _recorded_turn(rows: list[tuple[str, str]]) -> list[str]:
    """The s2c lines of the recording's first turn, from ``thread/status/changed`` (after its
    answer) to ``turn/completed``, leaving out the MCP line that only the first turn has."""
    lines: list[str] = []
    inside = False
    for direction, raw in rows:
        if direction != "s2c":
            continue
        key = _key(raw)
        if key == "result:turn" and not inside:
            inside = True
            continue
        if inside and key != "mcpServer/startupStatus/updated":
            lines.append(raw)
            if key == "turn/completed":
                return lines
    raise ValueError("no turn in the recording")


def session(threads: int, turns: int, shapes: Shapes | None = None
            ) -> Iterator[tuple[str, bytes]]:
    """(direction, line) of one connection: initialize, then ``threads`` threads of ``turns``
    turns each, every turn steered once, in the order a real server would interleave them."""
    shapes = shapes or Shapes()
    next_id = 0
    yield "c2s", shapes.request(shapes.initialize, next_id)
    yield "s2c", shapes.request(shapes.initialize_result, next_id)
    yield "c2s", shapes.initialized
    next_id += 1
    turn_number = 0
    for thread_number in range(threads):
        thread = shapes.thread_id(thread_number)
        yield "c2s", shapes.request(shapes.thread_start, next_id)
        for line in (shapes.request(shapes.thread_result, next_id, thread),
                     *shapes.fill([shapes.thread_started, shapes.mcp_status], thread, b"", 0)):
            yield "s2c", line
        next_id += 1
        for _ in range(turns):
            turn = shapes.turn_id(turn_number)
            yield "c2s", shapes.request(shapes.turn_start, next_id, thread)
            yield "s2c", shapes.request(shapes.turn_result, next_id, thread, turn)
            for line in shapes.fill(shapes.turn_first, thread, turn, turn_number):
                yield "s2c", line
            yield "c2s", shapes.request(shapes.turn_steer, next_id + 1, thread, turn)
            yield "s2c", shapes.request(shapes.steer_result, next_id + 1, thread, turn)
            for line in shapes.fill(shapes.turn_second, thread, turn, turn_number + 7):
                yield "s2c", line
            next_id += 2
            turn_number += 1


def transcript_rows(threads: int, turns: int) -> Iterator[bytes]:
    """``session`` as transcript rows (``*.rpc.jsonl``), a meta row with ``started_at`` first."""
    yield b'{"t": 0.0, "dir": "meta", "raw": "{\\"started_at\\": 1795607174.0}"}\n'
    for index, (direction, line) in enumerate(session(threads, turns)):
        raw = json.dumps(line.decode(), ensure_ascii=False)
        yield b'{"t": %.4f, "dir": "%s", "raw": %s}\n' % (index * 1e-4, direction.encode(),
                                                           raw.encode())
