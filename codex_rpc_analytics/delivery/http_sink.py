"""The Codex analytics HTTP sink: POST ``{"events":[...]}`` as codex 0.169.0 does (§10.1).

Spec forms: ``https://HOST/PATH/`` (a base URL like ``chatgpt_base_url``; a URL that already ends
in ``/codex/analytics-events/events`` is used as is), ``http://`` only for loopback hosts, and
``codex``: the base codex itself would use (``CODEX_APP_SERVER_CHATGPT_BASE_URL`` >
``chatgpt_base_url`` of the active profile > top-level ``chatgpt_base_url`` > the default).

Differences from codex's request, all outside the body: ``User-Agent`` names this tool (codex
sends the app-server's own user agent, which a tap does not have), ``Accept-Encoding`` is not
sent (codex sends none), and two headers let the collector de-duplicate a retried batch:
``X-Codex-Rpc-Analytics-Event-Ids`` (the batch's event ids, in body order) and
``Idempotency-Key`` (a hash of them). ``originator`` is the ``product_client_id`` shared by the
whole batch: the outbox groups batches by it, so the header is true for every event in the body.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from ._redact import redact, truncate
from .codex_auth import AuthUnavailable, CredentialSource
from .codex_config import load_codex_config
from .retry import RetryPolicy, Verdict, classify_status, parse_retry_after
from .sink_base import Batch, SendResult, SinkDisabled, SinkEnv, SinkSpec, SinkSpecError

EVENTS_PATH = "/codex/analytics-events/events"
EVENT_IDS_HEADER = "X-Codex-Rpc-Analytics-Event-Ids"
IDEMPOTENCY_HEADER = "Idempotency-Key"
CODEX_DEFAULT_FORM = "codex"


def _version() -> str:
    try:
        return importlib.metadata.version("codex-rpc-analytics")
    except importlib.metadata.PackageNotFoundError:
        return "0.1.0"


USER_AGENT = f"codex-rpc-analytics/{_version()}"
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


class HttpSinkSpec(SinkSpec, frozen=True):
    # None: resolve "the codex default" from config/env when the sink is opened.
    base_url: str | None

    @property
    def key(self) -> str:
        return self.base_url or CODEX_DEFAULT_FORM

    @property
    def kind(self) -> str:
        return "codex-analytics"

    def open(self, env: SinkEnv) -> HttpSink | SinkDisabled:
        config = load_codex_config(env.codex_home)
        if config.error is not None:
            return SinkDisabled(config.error)
        if not config.analytics_enabled:
            return SinkDisabled(
                "analytics are disabled in codex's config.toml ([analytics] enabled = false)"
            )
        try:
            url = events_url(self.base_url or canonical_url(config.chatgpt_base_url))
        except SinkSpecError as exc:
            return SinkDisabled(str(exc))
        credentials = CredentialSource(env.codex_home)
        current = credentials.current()
        if isinstance(current, AuthUnavailable):
            return SinkDisabled(current.reason)
        return HttpSink(self.key, url, credentials, env.policy)


def _is_loopback(host: str) -> bool:
    if host.rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def canonical_url(url: str) -> str:
    """Validate an http(s) URL and return it with scheme and host lowercased."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise SinkSpecError(f"not an http(s) URL with a host: {url}")
    if parts.query or parts.fragment:
        raise SinkSpecError(f"sink URL must not have a query or fragment: {url}")
    if parts.username or parts.password:
        raise SinkSpecError("sink URL must not carry credentials")
    if scheme == "http" and not _is_loopback(parts.hostname):
        raise SinkSpecError(
            f"http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost): {url}"
            " — use https://"
        )
    return urlunsplit((scheme, parts.netloc.lower(), parts.path or "/", "", ""))


def events_url(base: str) -> str:
    if base.rstrip("/").endswith(EVENTS_PATH):
        return base.rstrip("/")
    return base.rstrip("/") + EVENTS_PATH


def parse_http(spec: str) -> HttpSinkSpec:
    return HttpSinkSpec(base_url=canonical_url(spec))


def parse_codex(spec: str) -> HttpSinkSpec:
    if spec != CODEX_DEFAULT_FORM:
        raise SinkSpecError(f"the codex sink takes no argument: --sink codex (got {spec})")
    return HttpSinkSpec(base_url=None)


def build_body(payloads: list[bytes]) -> bytes:
    """``{"events":[p1,p2,...]}`` by byte concatenation: payloads are never re-encoded."""
    return b'{"events":[' + b",".join(payloads) + b"]}"


def idempotency_key(event_ids: list[str]) -> str:
    return hashlib.sha256(",".join(event_ids).encode()).hexdigest()


class HttpSink:
    groups_by_originator = True

    def __init__(
        self, key: str, url: str, credentials: CredentialSource, policy: RetryPolicy
    ) -> None:
        self._key = key
        self._url = url
        self._credentials = credentials
        self._policy = policy
        self._session: aiohttp.ClientSession | None = None

    @property
    def key(self) -> str:
        return self._key

    @property
    def url(self) -> str:
        return self._url

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily, inside the delivery loop: a session belongs to the loop it was made on.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=self._policy.timeout_total_s, connect=self._policy.timeout_connect_s
                ),
                # One request in flight per sink; a second slot covers a half-closed keep-alive.
                connector=aiohttp.TCPConnector(limit=2),
                headers={"User-Agent": USER_AGENT},
                skip_auto_headers=("Accept-Encoding",),
                raise_for_status=False,
            )
        return self._session

    async def send(self, batch: Batch) -> SendResult:
        credentials = self._credentials.current()
        if isinstance(credentials, AuthUnavailable):
            error = f"ChatGPT login unavailable: {credentials.reason}"
            return SendResult(Verdict.RETRY, error=error)
        headers = {
            "Authorization": f"Bearer {credentials.access_token}",
            "chatgpt-account-id": credentials.account_id,
            "Content-Type": "application/json",
            EVENT_IDS_HEADER: ",".join(batch.event_ids),
            IDEMPOTENCY_HEADER: idempotency_key(batch.event_ids),
        }
        if batch.originator:
            headers["originator"] = _HEADER_UNSAFE.sub("", batch.originator)
        try:
            async with self._get_session().post(
                self._url, data=build_body(batch.payloads), headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                verdict = classify_status(status)
                if verdict is Verdict.DELIVERED:
                    # Read the (tiny, "{}") answer so the connection goes back to the pool.
                    await response.content.read(65536)
                    return SendResult(Verdict.DELIVERED)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                snippet = (await response.content.read(200)).decode("utf-8", "replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return SendResult(Verdict.RETRY, error=self._clean(error, credentials.secrets))
        if status == 401 and self._credentials.current() != credentials:
            # codex refreshed the token while we were sending: retry with the new one.
            verdict = Verdict.RETRY
        error = f"HTTP {status}" + (f": {snippet.strip()}" if snippet.strip() else "")
        return SendResult(
            verdict, error=self._clean(error, credentials.secrets), retry_after_s=retry_after
        )

    @staticmethod
    def _clean(error: str, secrets: tuple[str, str]) -> str:
        return truncate(redact(" ".join(error.split()), secrets))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
