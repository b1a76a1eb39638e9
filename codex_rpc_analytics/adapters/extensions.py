"""The proxy's own methods, ``rpcAnalytics/*``: answered by the proxy, never forwarded.

Dispatch uses python-lsp-jsonrpc's ``MethodDispatcher`` and ``Endpoint`` the way
docs/python-stack.md §1.3 describes: the intercepted line is decoded, ``"jsonrpc":"2.0"`` is
added for the endpoint's sake, and the answer it produces has it removed again and is written
in the app-server's own style, one compact line: ``{"id":…,"result":…}`` or
``{"error":{…},"id":…}``.

Threads: :meth:`Extensions.handle` runs in the session's analysis step (``TapSession.process``,
on the relay's thread while it is idle; the session owns the analyzer, so a status snapshot is
consistent with every byte relayed before the request). Each handler takes its snapshot there
and returns a *callable*; the endpoint runs it on its small executor, so a ``flush`` that waits
for the sinks never holds up analysis or the relay. ``reply`` is therefore called from the
executor's threads (and, for a malformed request, from the analysis step): the stdio proxy
queues the answer and wakes its poll loop through a self-pipe, the in-process transport hops
onto its asyncio loop.

Decisions:

* Methods: ``rpcAnalytics/status`` (counters; params ignored) and ``rpcAnalytics/flush``
  (params ``{"timeoutMs": N}``, default 5000, at most 30000).
* An unknown ``rpcAnalytics/*`` method is answered as codex answers an unknown method:
  ``-32600 "Invalid request: unknown variant `X`, expected one of …"`` (not pylsp's -32601),
  and pylsp's traceback for it is filtered out of the log.
* ``params`` that is present but not an object (or null) gets ``-32600 "Invalid request:
  params must be an object"``.
* A notification (no id, or ``"id": null``) in the namespace is swallowed: run, never
  answered.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
from pylsp_jsonrpc.dispatchers import MethodDispatcher
from pylsp_jsonrpc.endpoint import Endpoint
from pylsp_jsonrpc.exceptions import JsonRpcMethodNotFound

NAMESPACE = "rpcAnalytics/"
METHODS = ("rpcAnalytics/status", "rpcAnalytics/flush")
INVALID_REQUEST = -32600
DEFAULT_FLUSH_TIMEOUT_MS = 5000
MAX_FLUSH_TIMEOUT_MS = 30000

Reply = Callable[[bytes], None]


class ExtensionProvider(Protocol):
    """What the handlers need from the session that owns them."""

    def status_snapshot(self) -> dict[str, Any]: ...

    def flush(self, timeout: float) -> dict[str, Any]: ...


class _QuietMethodNotFound(logging.Filter):
    """pylsp logs a full traceback for every unknown method; for us that is a normal answer.
    Nor is a notification's work cancelled when the session ends (``close``) an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(
            record.exc_info[1], JsonRpcMethodNotFound | concurrent.futures.CancelledError
        ):
            return False
        return "unknown method" not in record.getMessage()


_endpoint_log = logging.getLogger("pylsp_jsonrpc.endpoint")
if not any(isinstance(f, _QuietMethodNotFound) for f in _endpoint_log.filters):
    _endpoint_log.addFilter(_QuietMethodNotFound())


class _Dispatcher(MethodDispatcher):  # type: ignore[misc]
    def __init__(self, provider: ExtensionProvider) -> None:
        self._provider = provider

    def m_rpc_analytics__status(self, **_params: Any) -> Callable[[], dict[str, Any]]:
        snapshot = self._provider.status_snapshot()
        return lambda: snapshot

    def m_rpc_analytics__flush(self, **params: Any) -> Callable[[], dict[str, Any]]:
        timeout_ms = params.get("timeoutMs", params.get("timeout_ms", DEFAULT_FLUSH_TIMEOUT_MS))
        if not isinstance(timeout_ms, int | float) or isinstance(timeout_ms, bool):
            timeout_ms = DEFAULT_FLUSH_TIMEOUT_MS
        timeout = min(max(float(timeout_ms), 0.0), MAX_FLUSH_TIMEOUT_MS) / 1000.0
        provider = self._provider
        return lambda: provider.flush(timeout)


_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def encode_result(request_id: Any, result: Any) -> bytes:
    return _encoder.encode({"id": request_id, "result": result}) + b"\n"


def encode_error(request_id: Any, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return _encoder.encode({"error": error, "id": request_id}) + b"\n"


def unknown_method_message(method: str) -> str:
    expected = ", ".join(f"`{name}`" for name in METHODS)
    return f"Invalid request: unknown variant `{method}`, expected one of {expected}"


class Extensions:
    """Answers intercepted ``rpcAnalytics/*`` lines through ``reply`` (any thread)."""

    def __init__(self, provider: ExtensionProvider, reply: Reply) -> None:
        self._reply = reply
        self._endpoint = Endpoint(_Dispatcher(provider), self._consume, max_workers=2)
        self.requests = 0
        self.answers = 0

    def handle(self, line: bytes) -> None:
        """One intercepted line (a request or notification whose method is in the namespace)."""
        try:
            message = _decoder.decode(line)
        except (ValueError, RecursionError):
            return  # the interceptor only passes decodable envelopes; nothing to answer
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            return
        self.requests += 1
        if message.get("id") is None:
            # A null id makes a notification, as the server reads it (envelope.classify): pylsp
            # would answer {"id":null,…}, a line no client expects.
            message.pop("id", None)
        params = message.get("params")
        if params is not None and not isinstance(params, dict):
            if "id" in message:
                self._send(encode_error(message["id"], INVALID_REQUEST,
                                        "Invalid request: params must be an object"))
            return
        message["jsonrpc"] = "2.0"
        self._endpoint.consume(message)

    def close(self) -> None:
        """Stop the executor; answers still running finish on their own (bounded by timeouts)."""
        self._endpoint._executor_service.shutdown(wait=False, cancel_futures=True)

    def _consume(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        error = message.get("error")
        if error is not None:
            code = error.get("code", INVALID_REQUEST)
            text = str(error.get("message", ""))
            if code == JsonRpcMethodNotFound.CODE:
                code, text = INVALID_REQUEST, unknown_method_message(text.rsplit(": ", 1)[-1])
            self._send(encode_error(request_id, code, text, error.get("data")))
        else:
            self._send(encode_result(request_id, message.get("result")))

    def _send(self, line: bytes) -> None:
        self._reply(line)
        self.answers += 1  # after: whoever sees the count can rely on the answer being handed on
