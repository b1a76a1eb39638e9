"""What the loopback model answers: realistic Responses API streams, scripted per scenario.

A turn's user text names its scenario with a marker, ``[scn:NAME]``. Each ``POST …/responses``
is matched by the **latest marker among its user messages** (a tool call's follow-up request,
a steered turn's next request and a forked agent's history all keep the scenario's marker) and
gets the scenario's next reply; when the replies run out the last one repeats (a scripted 500
then answers every retry). codex's own compaction request (its last user message is codex's
compaction prompt) is matched as ``NAME:compact``. A request without a marker, or with an
unknown one, gets one plain assistant message: the fake stream of
shared/docs/real-codex-peer.md §4.

A reply is declarative JSON (it travels in the session spec into the namespace):

* ``{"output": [ITEM, …], "usage": USAGE}``: a 200 SSE stream shaped as the OpenAI Responses API
  streams it (``response.created``, ``response.in_progress``, per item ``output_item.added``,
  its deltas, ``output_item.done``, then ``response.completed``); ``usage`` ``null`` leaves
  usage out of ``response.completed``; absent gives 10 in / 5 out;
* ``{"output": …, "cut_after_items": N}``: the same stream, closed after N complete items
  without ``response.completed`` (a stream cut mid-response);
* ``{"failed": {"code": C, "message": M}}``: a stream ending in ``response.failed``;
* ``{"status": S, "json": BODY, "headers": {…}}``: a plain HTTP answer (errors).

Items: ``{"type": "message", "text": T}``, ``{"type": "function_call", "name": N,
"arguments": {…}}``, ``{"type": "custom_tool_call", "name": N, "input": T}``,
``{"type": "web_search_call", "query": Q}``, ``{"type": "image_generation_call"}``,
``{"type": "reasoning", "summary": T}``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MARKER = re.compile(r"\[scn:([A-Za-z0-9_.-]+)\]")
COMPACTION_PROMPT = "You are performing a CONTEXT CHECKPOINT COMPACTION"
DEFAULT_USAGE = {"input_tokens": 10, "cached_tokens": 0, "output_tokens": 5,
                 "reasoning_tokens": 0}
DEFAULT_REPLY: dict[str, Any] = {"output": [{"type": "message", "text": "ok from fake model"}]}
# A 1x1 transparent PNG: what an image generation call returns, base64.
TINY_PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)).decode()

Reply = dict[str, Any]


def marker_of(request_body: Any) -> str | None:
    """The latest scenario marker among the user messages of a Responses request body."""
    if not isinstance(request_body, dict):
        return None
    items = request_body.get("input")
    if not isinstance(items, list):
        return None
    users = [json.dumps(item.get("content"), ensure_ascii=False) for item in items
             if isinstance(item, dict) and item.get("role") == "user"]
    compaction = bool(users) and COMPACTION_PROMPT in users[-1]
    for text in reversed(users):
        matches = MARKER.findall(text)
        if matches:
            return matches[-1] + (":compact" if compaction else "")
    return None


@dataclass
class ModelScript:
    """Replies per scenario marker, handed out in order (the last one repeats)."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)
    served: dict[str, int] = field(default_factory=dict)

    def next_reply(self, request_body: Any) -> tuple[str | None, Reply]:
        marker = marker_of(request_body)
        replies = self.replies.get(marker or "")
        if not replies:
            return marker, DEFAULT_REPLY
        index = self.served.get(marker or "", 0)
        self.served[marker or ""] = index + 1
        return marker, replies[min(index, len(replies) - 1)]


# ------------------------------------------------------------------------------------------------
# The SSE stream


class StreamBuilder:
    """One Responses API stream: sequence numbers, ids and the final response object."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.sequence = itertools.count()
        self.response_id = f"resp_{time.time_ns():x}"
        self.created_at = int(time.time())
        self.done_items: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{self.response_id[5:]}{next(self._ids):02d}"

    def event(self, kind: str, **members: Any) -> dict[str, Any]:
        return {"type": kind, "sequence_number": next(self.sequence), **members}

    def response(self, status: str, usage: dict[str, Any] | None = None,
                 error: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "id": self.response_id, "object": "response", "created_at": self.created_at,
            "status": status, "error": error, "incomplete_details": None, "model": self.model,
            "output": list(self.done_items) if status != "in_progress" else [],
            "parallel_tool_calls": True, "tool_choice": "auto", "usage": usage,
        }


def _usage(spec: dict[str, Any]) -> dict[str, Any]:
    spec = {**DEFAULT_USAGE, **spec}
    return {
        "input_tokens": spec["input_tokens"],
        "input_tokens_details": {"cached_tokens": spec["cached_tokens"]},
        "output_tokens": spec["output_tokens"],
        "output_tokens_details": {"reasoning_tokens": spec["reasoning_tokens"]},
        "total_tokens": spec["input_tokens"] + spec["output_tokens"],
    }


def _item_events(stream: StreamBuilder, index: int, spec: dict[str, Any]) -> Iterator[
        dict[str, Any]]:
    """The events of one output item, ending with its ``output_item.done``."""
    kind = spec["type"]
    ev = stream.event
    if kind == "message":
        item_id = stream.new_id("msg")
        text = spec.get("text", "ok from fake model")
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        yield ev("response.output_item.added", output_index=index, item={
            "id": item_id, "type": "message", "status": "in_progress", "content": [],
            "role": "assistant"})
        yield ev("response.content_part.added", item_id=item_id, output_index=index,
                 content_index=0, part=part)
        yield ev("response.output_text.delta", item_id=item_id, output_index=index,
                 content_index=0, delta=text, logprobs=[])
        yield ev("response.output_text.done", item_id=item_id, output_index=index,
                 content_index=0, text=text, logprobs=[])
        done_part = {**part, "text": text}
        yield ev("response.content_part.done", item_id=item_id, output_index=index,
                 content_index=0, part=done_part)
        item = {"id": item_id, "type": "message", "status": "completed",
                "content": [done_part], "role": "assistant"}
    elif kind == "function_call":
        item_id = stream.new_id("fc")
        arguments = json.dumps(spec.get("arguments", {}), separators=(",", ":"))
        call_id = spec.get("call_id") or stream.new_id("call")
        base = {"id": item_id, "type": "function_call", "call_id": call_id,
                "name": spec["name"]}
        if "namespace" in spec:
            base["namespace"] = spec["namespace"]
        yield ev("response.output_item.added", output_index=index,
                 item={**base, "status": "in_progress", "arguments": ""})
        yield ev("response.function_call_arguments.delta", item_id=item_id,
                 output_index=index, delta=arguments)
        yield ev("response.function_call_arguments.done", item_id=item_id,
                 output_index=index, arguments=arguments)
        item = {**base, "status": "completed", "arguments": arguments}
    elif kind == "custom_tool_call":
        item_id = stream.new_id("ctc")
        call_id = spec.get("call_id") or stream.new_id("call")
        base = {"id": item_id, "type": "custom_tool_call", "call_id": call_id,
                "name": spec["name"]}
        yield ev("response.output_item.added", output_index=index,
                 item={**base, "status": "in_progress", "input": ""})
        yield ev("response.custom_tool_call_input.delta", item_id=item_id,
                 output_index=index, delta=spec["input"])
        yield ev("response.custom_tool_call_input.done", item_id=item_id,
                 output_index=index, input=spec["input"])
        item = {**base, "status": "completed", "input": spec["input"]}
    elif kind == "web_search_call":
        item_id = stream.new_id("ws")
        yield ev("response.output_item.added", output_index=index,
                 item={"id": item_id, "type": "web_search_call", "status": "in_progress"})
        for phase in ("in_progress", "searching", "completed"):
            yield ev(f"response.web_search_call.{phase}", item_id=item_id, output_index=index)
        item = {"id": item_id, "type": "web_search_call", "status": "completed",
                "action": {"type": "search", "query": spec.get("query", "codex"),
                           "sources": None}}
    elif kind == "image_generation_call":
        item_id = stream.new_id("ig")
        yield ev("response.output_item.added", output_index=index,
                 item={"id": item_id, "type": "image_generation_call",
                       "status": "in_progress"})
        for phase in ("in_progress", "generating"):
            yield ev(f"response.image_generation_call.{phase}", item_id=item_id,
                     output_index=index)
        yield ev("response.image_generation_call.completed", item_id=item_id,
                 output_index=index)
        item = {"id": item_id, "type": "image_generation_call", "status": "completed",
                "background": "opaque", "output_format": "png", "quality": "low",
                "size": "1024x1024", "revised_prompt": spec.get("prompt", "a dot"),
                "result": TINY_PNG}
    elif kind == "reasoning":
        item_id = stream.new_id("rs")
        text = spec.get("summary", "thinking")
        yield ev("response.output_item.added", output_index=index,
                 item={"id": item_id, "type": "reasoning", "summary": []})
        part = {"type": "summary_text", "text": ""}
        yield ev("response.reasoning_summary_part.added", item_id=item_id,
                 output_index=index, summary_index=0, part=part)
        yield ev("response.reasoning_summary_text.delta", item_id=item_id,
                 output_index=index, summary_index=0, delta=text)
        yield ev("response.reasoning_summary_text.done", item_id=item_id,
                 output_index=index, summary_index=0, text=text)
        yield ev("response.reasoning_summary_part.done", item_id=item_id,
                 output_index=index, summary_index=0, part={**part, "text": text})
        item = {"id": item_id, "type": "reasoning",
                "summary": [{"type": "summary_text", "text": text}]}
    else:
        raise ValueError(f"unknown scripted item type {kind!r}")
    stream.done_items.append(item)
    yield ev("response.output_item.done", output_index=index, item=item)


def stream_events(reply: Reply, model: str) -> list[dict[str, Any]]:
    """Every SSE event of a streamed reply, in order."""
    stream = StreamBuilder(model)
    events = [stream.event("response.created", response=stream.response("in_progress")),
              stream.event("response.in_progress", response=stream.response("in_progress"))]
    if "failed" in reply:
        error = {"code": reply["failed"].get("code"), "message": reply["failed"]["message"]}
        events.append(stream.event("response.failed", response=stream.response(
            "failed", error=error)))
        return events
    cut_after = reply.get("cut_after_items")
    for index, item in enumerate(reply.get("output", [])):
        if cut_after is not None and index >= cut_after:
            return events
        events.extend(_item_events(stream, index, item))
    if cut_after is not None:
        return events
    usage_spec = reply.get("usage", {})
    usage = _usage(usage_spec) if usage_spec is not None else None
    events.append(stream.event("response.completed", response=stream.response(
        "completed", usage=usage)))
    return events


def sse_bytes(events: list[dict[str, Any]]) -> bytes:
    return "".join(
        f"event: {ev['type']}\ndata: {json.dumps(ev, separators=(',', ':'))}\n\n"
        for ev in events
    ).encode()


def split_events(events: list[dict[str, Any]], items: int) -> tuple[list[dict[str, Any]],
                                                                   list[dict[str, Any]]]:
    """The events up to the end of the first ``items`` output items (``response.created``
    and ``response.in_progress`` included), and the rest."""
    done = 0
    for index, event in enumerate(events):
        if event["type"] == "response.output_item.done":
            done += 1
        if done >= items and index >= 1 and (items == 0 or
                                               event["type"] == "response.output_item.done"):
            return events[: index + 1], events[index + 1:]
    return events, []
