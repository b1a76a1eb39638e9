"""The proxy's own methods, ``rpcAnalytics/*``: answered by the proxy, never forwarded.

Dispatch uses python-lsp-jsonrpc's ``MethodDispatcher`` and ``Endpoint`` the way
docs/python-stack.md §1.3 describes: the intercepted line is decoded, ``"jsonrpc":"2.0"`` is
added for the endpoint's sake, and the answer it produces has it removed again and is written
in the app-server's own style, one compact line: ``{"id":…,"result":…}`` or
``{"error":{…},"id":…}``.

Threads: :meth:`Extensions.handle` runs in the session's analysis step (``TapSession.process``,
on the relay's thread while it is idle; the session owns the analyzer, so a status snapshot is
consistent with every byte relayed before the request). Each handler takes its snapshot there
and returns a *future* the endpoint answers from once it is done; the work runs on a small
executor of ours, so a ``flush`` that waits for the sinks never holds up analysis or the relay.
``reply`` is therefore called from the executor's threads (and, for a malformed request or at
the end, from the analysis step): the stdio proxy queues the answer and wakes its poll loop
through a self-pipe, the in-process transport hops onto its asyncio loop.

The end (:meth:`Extensions.close`, when the session ends). Every request with an id gets
exactly one answer, and before ``close`` returns it has been handed to ``reply``, so the driver
can still put it out before the client's output closes: a status whose snapshot was taken gets
it (a real answer), a flush that has not finished gets ``ANALYTICS_ENDED``
(``{"code":-32000,"message":"rpcAnalytics: analytics ended before this request was
answered"}``; its late result, if any, is dropped), and so do requests the session never
reached (skipped at its deadline) or received after it ended (:meth:`Extensions.refuse`).
Nothing is cancelled under pylsp's feet (a cancelled future made its callback raise, an answer
lost and "exception calling callback" logged).

Decisions:

* Methods: ``rpcAnalytics/status`` (counters; params ignored) and ``rpcAnalytics/flush``
  (params ``{"timeoutMs": N}``, default 5000, at most 30000).
* An unknown ``rpcAnalytics/*`` method is answered as codex answers an unknown method:
  ``-32600 "Invalid request: unknown variant `X`, expected one of …"`` (not pylsp's -32601),
  and pylsp's traceback for it is filtered out of the log.
* ``params`` that is present but not an object (or null) gets ``-32600 "Invalid request:
  params must be an object"``.
* A notification (no id, or ``"id": null``) in the namespace is swallowed: run, never
  answered (at the end, one still waiting is dropped).
* Analytics ended before the request could be answered: ``-32000`` (the JSON-RPC range for
  implementation-defined server errors), message ``ENDED_MESSAGE``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from typing import Any, Protocol

import msgspec
from pylsp_jsonrpc.dispatchers import MethodDispatcher
from pylsp_jsonrpc.endpoint import Endpoint
from pylsp_jsonrpc.exceptions import JsonRpcMethodNotFound

NAMESPACE = "rpcAnalytics/"
METHODS = ("rpcAnalytics/status", "rpcAnalytics/flush")
INVALID_REQUEST = -32600
INTERNAL_ERROR = -32603
ANALYTICS_ENDED = -32000
ENDED_MESSAGE = "rpcAnalytics: analytics ended before this request was answered"
# How long close() waits for answers already made on a worker thread to reach ``reply``
# (microseconds in practice: the answer is made right after its future is done).
HANDOFF_WAIT_S = 1.0
DEFAULT_FLUSH_TIMEOUT_MS = 5000
MAX_FLUSH_TIMEOUT_MS = 30000

Reply = Callable[[bytes], None]
Run = Callable[[Callable[[], Any], Callable[[], Any] | None], "Future[Any]"]


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
    """Each handler hands ``run`` its work and, when the answer is already known, what to
    answer if the session ends first (None: the ``ANALYTICS_ENDED`` error)."""

    def __init__(self, provider: ExtensionProvider, run: Run) -> None:
        self._provider = provider
        self._run = run

    def m_rpc_analytics__status(self, **_params: Any) -> Future[Any]:
        snapshot = self._provider.status_snapshot()
        return self._run(lambda: snapshot, lambda: snapshot)

    def m_rpc_analytics__flush(self, **params: Any) -> Future[Any]:
        timeout_ms = params.get("timeoutMs", params.get("timeout_ms", DEFAULT_FLUSH_TIMEOUT_MS))
        if not isinstance(timeout_ms, int | float) or isinstance(timeout_ms, bool):
            timeout_ms = DEFAULT_FLUSH_TIMEOUT_MS
        timeout = min(max(float(timeout_ms), 0.0), MAX_FLUSH_TIMEOUT_MS) / 1000.0
        provider = self._provider
        return self._run(lambda: provider.flush(timeout), None)


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


def readable(line: bytes) -> bool:
    """Whether :class:`Extensions` can decode ``line`` (an envelope in the namespace)."""
    return Extensions._decode(line) is not None


def _ended_answer() -> dict[str, Any]:
    # A dict with "error" is answered as that error by pylsp (no traceback logged).
    return {"error": {"code": ANALYTICS_ENDED, "message": ENDED_MESSAGE}}


def _result(value: Any) -> dict[str, Any]:
    # Always the envelope: pylsp merges a result dict that has its own "result" or "error"
    # member into the answer (an embedder's flush saying {"error": "…"} lost its answer).
    return {"result": value}


def _settle(future: Future[Any], result: Any) -> None:
    """Complete ``future`` unless it already is (exactly one answer: the first wins)."""
    with contextlib.suppress(InvalidStateError):
        future.set_result(result)


class Extensions:
    """Answers intercepted ``rpcAnalytics/*`` lines through ``reply`` (any thread)."""

    def __init__(self, provider: ExtensionProvider, reply: Reply) -> None:
        self._reply = reply
        # pylsp's own executor is never used: handlers return futures (``_run``).
        self._endpoint = Endpoint(_Dispatcher(provider, self._run), self._consume,
                                  max_workers=1)
        self._executor = ThreadPoolExecutor(max_workers=2,
                                            thread_name_prefix="codex-rpc-analytics-ext")
        self._open: dict[Future[Any], Callable[[], Any] | None] = {}  # not answered yet
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._closed = False
        self.requests = 0
        self.answers = 0
        self.owed = 0  # requests with an id seen: each gets exactly one answer

    def handle(self, line: bytes) -> None:
        """One intercepted line (a request or notification whose method is in the namespace)."""
        message = self._decode(line)
        if message is None:
            return
        self.requests += 1
        if "id" in message:
            with self._lock:
                self.owed += 1
        if self._closed:
            self._answer_ended(message)
            return
        params = message.get("params")
        if params is not None and not isinstance(params, dict):
            if "id" in message:
                self._send(encode_error(message["id"], INVALID_REQUEST,
                                        "Invalid request: params must be an object"))
            return
        message["jsonrpc"] = "2.0"
        self._endpoint.consume(message)

    def refuse(self, line: bytes) -> None:
        """A line analytics will never handle (it ended first): a request gets the
        ``ANALYTICS_ENDED`` error, a notification nothing."""
        message = self._decode(line)
        if message is None:
            return
        if "id" in message:
            with self._lock:
                self.owed += 1
        self._answer_ended(message)

    def close(self) -> None:
        """The session ended: every request still open is answered now (a status with its
        snapshot, a flush with ``ANALYTICS_ENDED``), and handed to ``reply`` before this
        returns; later lines go to :meth:`refuse`. Work still running is not waited for."""
        with self._lock:
            self._closed = True
            still_open, self._open = self._open, {}
        self._executor.shutdown(wait=False, cancel_futures=True)
        for future, known in still_open.items():
            _settle(future, _ended_answer() if known is None else _result(known()))
        with self._answered:  # answers made on a worker thread just now: let them through
            self._answered.wait_for(lambda: self.answers >= self.owed, HANDOFF_WAIT_S)

    def _run(self, work: Callable[[], Any], known: Callable[[], Any] | None) -> Future[Any]:
        """The future a handler returns: ``work`` on our executor, or (closed) at once."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                _settle(future, _ended_answer() if known is None else _result(known()))
                return future
            self._open[future] = known
        future.add_done_callback(self._forget)

        def run() -> None:
            try:
                result = _result(work())
            except Exception as error:  # provider methods do not raise; never lose the answer
                result = {"error": {"code": INTERNAL_ERROR,
                                    "message": f"{type(error).__name__}: {error}"}}
            _settle(future, result)

        self._executor.submit(run)
        return future

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._open.pop(future, None)

    @staticmethod
    def _decode(line: bytes) -> dict[str, Any] | None:
        try:
            message = _decoder.decode(line)
        except (ValueError, RecursionError):
            return None  # the interceptor only passes decodable envelopes; nothing to answer
        if not isinstance(message, dict) or not isinstance(message.get("method"), str):
            return None
        if message.get("id") is None:
            # A null id makes a notification, as the server reads it (envelope.classify): pylsp
            # would answer {"id":null,…}, a line no client expects.
            message.pop("id", None)
        return message

    def _answer_ended(self, message: dict[str, Any]) -> None:
        if "id" in message:
            self._send(encode_error(message["id"], ANALYTICS_ENDED, ENDED_MESSAGE))

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
        with self._answered:  # after: whoever sees the count can rely on the answer handed on
            self.answers += 1
            self._answered.notify_all()
