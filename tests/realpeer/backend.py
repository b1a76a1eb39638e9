"""The loopback backend that codex (and later the project's shipper) talks to.

One aiohttp app on 127.0.0.1 and a random port serves both base URLs of
shared/docs/real-codex-peer.md §4:

| request                                | answer                                               |
|----------------------------------------|------------------------------------------------------|
| `POST …/codex/analytics-events/events` | `200 {}`; body bytes and headers recorded (oracle)   |
| `POST …/responses`                     | `200 text/event-stream`, the 3-event fake stream     |
| `GET /_realpeer/analytics?count=N&…`   | test control: long-poll until N codex POSTs arrived  |
| anything else                          | `404 {"detail":"not found"}`                         |

Header values of `authorization` and `chatgpt-account-id` are kept in memory only (for
assertions such as "equals the configured account id"); everything meant for display or for a
file goes through `masked_headers()`.

Use it in-process (`async with FakeBackend() as backend:`), or from synchronous code through
`ThreadedBackend`, which runs the same app on a private event loop thread.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .model_script import ModelScript, split_events, sse_bytes, stream_events

ANALYTICS_SUFFIX = "/codex/analytics-events/events"
RESPONSES_SUFFIX = "/responses"
CODEX_ANALYTICS_PATH = "/backend-api" + ANALYTICS_SUFFIX
CONTROL_PATH = "/_realpeer/analytics"
REFRESH_PATH = "/oauth/token"
SECRET_HEADERS = frozenset({"authorization", "chatgpt-account-id"})
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}

# shared/docs/real-codex-peer.md §4: created, one assistant message, completed with usage.
FAKE_RESPONSE_EVENTS: tuple[dict[str, Any], ...] = (
    {"type": "response.created", "response": {"id": "resp_1"}},
    {
        "type": "response.output_item.done",
        "output_index": 0,
        "item": {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "ok from fake model", "annotations": []}],
        },
    },
    {
        "type": "response.completed",
        "response": {
            "id": "resp_1",
            "usage": {
                "input_tokens": 10,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 5,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 15,
            },
        },
    },
)


def sse_body(events: Iterable[dict[str, Any]] = FAKE_RESPONSE_EVENTS) -> bytes:
    chunks = [
        f"event: {ev['type']}\ndata: {json.dumps(ev, separators=(',', ':'))}\n\n" for ev in events
    ]
    return "".join(chunks).encode()


def mask_value(name: str, value: str) -> str:
    if name.lower() not in SECRET_HEADERS:
        return value
    if name.lower() == "authorization":
        scheme, _, token = value.partition(" ")
        return f"{scheme} ***({len(token)} chars)" if token else "***"
    return f"***({len(value)} chars)"


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as received. `headers` holds the real values: never print or store them."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]  # (lower-case name, value), in received order
    body: bytes
    received_at: float  # time.time()
    status: int

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def masked_headers(self) -> list[tuple[str, str]]:
        return [(k, mask_value(k, v)) for k, v in self.headers]

    def decoded_body(self) -> bytes:
        """The body with `content-encoding` gzip undone (zstd only when `zstandard` exists)."""
        encoding = (self.header("content-encoding") or "").lower()
        if encoding == "gzip":
            return gzip.decompress(self.body)
        if encoding == "zstd":
            try:
                import zstandard  # type: ignore[import-not-found,unused-ignore]
            except ImportError:
                return b""
            return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(self.body))
        return self.body

    def json(self) -> Any:
        return json.loads(self.decoded_body())

    def display(self) -> dict[str, Any]:
        """A JSON-able summary without secrets (for logs and result files)."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "headers": self.masked_headers(),
            "body_len": len(self.body),
            "t": self.received_at,
        }


@dataclass(frozen=True)
class AnalyticsPost(ReceivedRequest):
    """A POST to `…/codex/analytics-events/events`; `body` is byte-exact."""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def events(self) -> list[dict[str, Any]]:
        doc = json.loads(self.body)
        events = doc.get("events") if isinstance(doc, dict) else None
        return list(events) if isinstance(events, list) else []


@dataclass
class FakeBackend:
    """The loopback HTTP backend. `start()` binds 127.0.0.1 on a free port (or `port`)."""

    host: str = "127.0.0.1"
    port: int = 0
    # Statuses for the next analytics POSTs, consumed front to back; empty → 200. Lets shipper
    # tests script failures ("500 twice, then 200") without timing tricks.
    analytics_statuses: list[int] = field(default_factory=list)
    analytics: list[AnalyticsPost] = field(default_factory=list)
    requests: list[ReceivedRequest] = field(default_factory=list)
    # What the model answers, per scenario marker (model_script.py); None → the fake stream.
    model_script: ModelScript | None = None
    # Each decoded Responses request body (with the marker and reply it got) is appended here.
    request_log: list[dict[str, Any]] | None = None
    # The answer to codex's token refresh (`{"status": S, "json": BODY}`); None → 404.
    refresh_reply: dict[str, Any] | None = None
    holds_reached: set[str] = field(default_factory=set)
    _holds: dict[str, asyncio.Event] = field(default_factory=dict, init=False, repr=False)
    _runner: web.AppRunner | None = field(default=None, init=False, repr=False)
    _changed: asyncio.Condition | None = field(default=None, init=False, repr=False)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> FakeBackend:
        self._changed = asyncio.Condition()
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        for event in self._holds.values():
            event.set()  # a held reply must not keep the server from stopping
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBackend:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- URLs -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def chatgpt_base_url(self) -> str:
        return f"{self.url}/backend-api/"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def analytics_url(self) -> str:
        return self.url + CODEX_ANALYTICS_PATH

    # -- observation ------------------------------------------------------------------------

    def posts(self, path: str | None = CODEX_ANALYTICS_PATH) -> list[AnalyticsPost]:
        """Analytics POSTs received so far, only those to `path` unless `path` is None."""
        return [p for p in self.analytics if path is None or p.path == path]

    def events(self, path: str | None = CODEX_ANALYTICS_PATH) -> list[dict[str, Any]]:
        return [ev for post in self.posts(path) for ev in post.events()]

    def responses_requests(self) -> list[ReceivedRequest]:
        return [
            r for r in self.requests if r.method == "POST" and r.path.endswith(RESPONSES_SUFFIX)
        ]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (on request arrivals, not on a clock) until `predicate()`; False on timeout."""
        assert self._changed is not None, "backend not started"
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(predicate), timeout)
            except TimeoutError:
                return predicate()
        return True

    async def wait_for_posts(
        self, count: int, timeout: float, path: str | None = CODEX_ANALYTICS_PATH
    ) -> list[AnalyticsPost]:
        """Wait until at least `count` analytics POSTs (to `path`) arrived; TimeoutError if not."""
        if not await self.wait_until(lambda: len(self.posts(path)) >= count, timeout):
            raise TimeoutError(
                f"{len(self.posts(path))} of {count} analytics POSTs to {path} after {timeout} s"
            )
        return self.posts(path)

    async def wait_for_events(
        self, count: int, timeout: float, path: str | None = CODEX_ANALYTICS_PATH
    ) -> list[dict[str, Any]]:
        """Like `wait_for_posts`, counting events inside the bodies (a shipper may batch)."""

        def enough() -> bool:
            try:
                return len(self.events(path)) >= count
            except ValueError:  # a body that is not JSON counts no events
                return False

        if not await self.wait_until(enough, timeout):
            raise TimeoutError(f"fewer than {count} analytics events to {path} after {timeout} s")
        return self.events(path)

    # -- HTTP -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path = request.path
        if request.method == "GET" and path == CONTROL_PATH:
            return await self._control(request)
        if request.method == "POST" and path.endswith(ANALYTICS_SUFFIX):
            status = self.analytics_statuses.pop(0) if self.analytics_statuses else 200
            answer = {} if status < 400 else {"detail": "scripted failure"}
            response = web.json_response(answer, status=status)
            post = AnalyticsPost(**self._fields(request, body, status))
            self.analytics.append(post)
            self.requests.append(post)
        elif request.method == "POST" and path == REFRESH_PATH and self.refresh_reply is not None:
            # codex's token refresh (CODEX_REFRESH_TOKEN_URL_OVERRIDE points here).
            response = web.json_response(self.refresh_reply.get("json", {}),
                                         status=int(self.refresh_reply.get("status", 401)))
            self.requests.append(ReceivedRequest(**self._fields(request, b"", response.status)))
        elif request.method == "POST" and path.endswith(RESPONSES_SUFFIX):
            received = ReceivedRequest(**self._fields(request, body, 200))
            self.requests.append(received)
            await self._notify()
            return await self._model_reply(request, received)
        else:
            response = web.json_response({"detail": "not found"}, status=404)
            self.requests.append(ReceivedRequest(**self._fields(request, body, 404)))
        await self._notify()
        return response

    async def _model_reply(
        self, request: web.Request, received: ReceivedRequest
    ) -> web.StreamResponse:
        if self.model_script is None:
            return web.Response(body=sse_body(), status=200, headers=SSE_HEADERS)
        try:
            request_body = received.json()
        except ValueError:
            request_body = None
        marker, reply = self.model_script.next_reply(request_body)
        if self.request_log is not None:
            self.request_log.append({"marker": marker, "reply": reply, "body": request_body})
        headers = dict(reply.get("headers", {}))
        if reply.get("drop"):
            # The connection dies before any answer (a proxy or the network giving up).
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if "status" in reply:
            return web.json_response(reply.get("json", {}), status=reply["status"],
                                     headers=headers)
        model = request_body.get("model", "") if isinstance(request_body, dict) else ""
        events = stream_events(reply, model)
        hold = reply.get("hold")
        if hold is None:
            return web.Response(body=sse_bytes(events), status=200,
                                headers={**SSE_HEADERS, **headers})
        # A slow model: the events of the first `hold_after_items` items go out at once, the
        # rest only when the session releases the hold (or codex gives up on the request).
        response = web.StreamResponse(status=200, headers={**SSE_HEADERS, **headers})
        await response.prepare(request)
        first, rest = split_events(events, int(reply.get("hold_after_items", 0)))
        try:
            await response.write(sse_bytes(first))
            self.holds_reached.add(str(hold))
            await self._notify()
            await self._hold_event(str(hold)).wait()
            await response.write(sse_bytes(rest))
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # codex closed the request (an interrupt): nothing more to say
        return response

    def _hold_event(self, name: str) -> asyncio.Event:
        if name not in self._holds:
            self._holds[name] = asyncio.Event()
        return self._holds[name]

    def release(self, name: str) -> None:
        """Let a held model reply go on (must run on the backend's loop)."""
        self._hold_event(name).set()

    @staticmethod
    def _fields(request: web.Request, body: bytes, status: int) -> dict[str, Any]:
        headers = tuple(
            (k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.raw_headers
        )
        return {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": headers,
            "body": body,
            "received_at": time.time(),
            "status": status,
        }

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    async def _control(self, request: web.Request) -> web.Response:
        """`GET /_realpeer/analytics?count=N&timeout=S[&path=P]`: long-poll for N codex POSTs.

        For helpers that run in another process (the SDK session scripts) and must end their
        session only once codex's events are in.
        """
        count = int(request.query.get("count", "0"))
        timeout = float(request.query.get("timeout", "0"))
        path = request.query.get("path", CODEX_ANALYTICS_PATH)
        reached = await self.wait_until(lambda: len(self.posts(path)) >= count, timeout)
        return web.json_response({"count": len(self.posts(path)), "reached": reached})


class ThreadedBackend:
    """`FakeBackend` on its own event-loop thread, for synchronous tests.

    with ThreadedBackend() as threaded:
        ... point something at threaded.backend.chatgpt_base_url ...
        threaded.wait_for_posts(2, timeout=10)
    """

    def __init__(self, **kwargs: Any) -> None:
        self.backend = FakeBackend(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedBackend:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.backend.start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.backend.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def wait_for_posts(
        self, count: int, timeout: float, path: str | None = CODEX_ANALYTICS_PATH
    ) -> list[AnalyticsPost]:
        future = asyncio.run_coroutine_threadsafe(
            self.backend.wait_for_posts(count, timeout, path), self._loop
        )
        return future.result(timeout + 5)
