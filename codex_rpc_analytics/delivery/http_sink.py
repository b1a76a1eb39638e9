"""HTTP sinks: POST ``{"events":[...]}`` as codex 0.169.0 does (§10.1), to one of two kinds.

* ``codex`` (:class:`CodexSinkSpec`): OpenAI's endpoint under the base codex itself would use
  (``CODEX_APP_SERVER_CHATGPT_BASE_URL`` > ``chatgpt_base_url`` of the active profile >
  top-level ``chatgpt_base_url`` > the default), with the user's ChatGPT access token and
  account id: the only sink those credentials ever go to.
* ``https://HOST/PATH/`` or a loopback ``http://`` (:class:`HttpSinkSpec`): a collector of
  ours. A base URL (a URL that already ends in ``/codex/analytics-events/events`` is used as
  is). It sends its own configured token (sink_auth.py), or no ``Authorization`` at all.

Proxies: like codex itself (reqwest) and every other HTTP client of a corporate fleet, both
kinds honour ``HTTPS_PROXY``/``HTTP_PROXY`` and ``NO_PROXY`` (:func:`proxy_for`); loopback
sinks always connect directly. ``trust_env`` stays off: it would also send ``~/.netrc``
credentials to the sink itself, which is not what a sink's token configuration says.

Differences from codex's request, all outside the body: ``User-Agent`` names this tool (codex
sends the app-server's own user agent, which a tap does not have), ``Accept-Encoding`` is not
sent (codex sends none), and two headers let the collector de-duplicate a retried batch:
``X-Codex-Rpc-Analytics-Event-Ids`` (the batch's event ids, in body order) and
``Idempotency-Key`` (a hash of them). ``originator`` is the ``product_client_id`` shared by the
whole batch: the outbox groups batches by it, so the header is true for every event in the body.

A 200 answer of our collector may list events it refused one by one (``{"rejected":[{"index",
"event_id","reason"}]}``): :func:`refused_events` reads them, and the shipper parks them as
rejected instead of counting them delivered.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import urllib.request
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import msgspec

from .. import __version__
from ._redact import redact, truncate
from .codex_auth import AuthUnavailable, CredentialSource
from .retry import RetryPolicy, Verdict, classify_status, parse_retry_after
from .sink_auth import BearerTokenAuth, ChatGptAuth, NoAuth, SinkAuth
from .sink_base import (
    Batch,
    RefusedEvent,
    SendResult,
    SinkDisabled,
    SinkEnv,
    SinkSpec,
    SinkSpecError,
)

EVENTS_PATH = "/codex/analytics-events/events"
EVENT_IDS_HEADER = "X-Codex-Rpc-Analytics-Event-Ids"
IDEMPOTENCY_HEADER = "Idempotency-Key"
CODEX_DEFAULT_FORM = "codex"


USER_AGENT = f"codex-rpc-analytics/{__version__}"
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
_ERROR_BODY_BYTES = 64 * 1024
# A 200 answer lists the refused events (about 150 bytes each); a batch holds at most 1,000.
_ANSWER_BODY_BYTES = 1024 * 1024
_REASON_CHARS = 500


class _Refused(msgspec.Struct):
    index: object = None
    event_id: object = None
    reason: object = None


class _Answer(msgspec.Struct):
    rejected: list[_Refused] = msgspec.field(default_factory=list)


_answer_decoder = msgspec.json.Decoder(_Answer)


def refused_events(answer: bytes, event_ids: list[str]) -> list[RefusedEvent]:
    """The events a 200 answer says were refused one by one (our collector's ``rejected``
    list), by their position in the batch: found by event id, else by index. An answer that
    is not such a document (codex's backend answers ``{}``) refuses nothing."""
    try:
        decoded = _answer_decoder.decode(answer)
    except msgspec.DecodeError:  # includes ValidationError
        return []
    positions = {event_id: i for i, event_id in enumerate(event_ids)}
    found: dict[int, RefusedEvent] = {}
    for entry in decoded.rejected:
        position = positions.get(entry.event_id) if isinstance(entry.event_id, str) else None
        if position is None and isinstance(entry.index, int) and not isinstance(
                entry.index, bool) and 0 <= entry.index < len(event_ids):
            position = entry.index
        if position is None:
            continue
        reason = entry.reason if isinstance(entry.reason, str) else "refused by the receiver"
        found[position] = RefusedEvent(position, reason[:_REASON_CHARS])
    return [found[p] for p in sorted(found)]


class HttpSinkSpec(SinkSpec, frozen=True):
    """A sink of ours (a team collector): ``https://HOST/PATH/`` or a loopback ``http://``.

    It never sees the user's ChatGPT credentials. It sends the token configured for it
    (``token_file`` or ``token_env``, from the config file) as ``Authorization: Bearer``, or no
    ``Authorization`` at all. The token is not part of the key: the key names where events go.
    """

    base_url: str
    token_file: str | None = None
    token_env: str | None = None

    @property
    def key(self) -> str:
        return self.base_url

    @property
    def kind(self) -> str:
        return "http"

    def auth(self) -> SinkAuth:
        if self.token_file is not None:
            return BearerTokenAuth(token_file=Path(self.token_file))
        if self.token_env is not None:
            return BearerTokenAuth(token_env=self.token_env)
        return NoAuth()

    def open(self, env: SinkEnv) -> HttpSink | SinkDisabled:
        auth = self.auth()
        if isinstance(auth, BearerTokenAuth):
            mode = auth.loose_permissions()
            if mode is not None:
                env.logger.warning(
                    "analytics sink %s: %s is readable by others (mode %04o); chmod 600 it",
                    self.key, auth.source, mode,
                )
        url = events_url(self.base_url)
        try:
            proxy = _announce_proxy(self.key, url, env)
        except SinkSpecError as exc:
            return SinkDisabled(str(exc))
        return HttpSink(self.key, url, auth, env.policy, proxy)


class CodexSinkSpec(SinkSpec, frozen=True):
    """``codex``: OpenAI's endpoint under codex's own ``chatgpt_base_url``, with the user's
    ChatGPT credentials, exactly as codex 0.169.0 posts (for hosts that replace codex)."""

    @property
    def key(self) -> str:
        return CODEX_DEFAULT_FORM

    @property
    def kind(self) -> str:
        return "codex-analytics"

    def open(self, env: SinkEnv) -> HttpSink | SinkDisabled:
        try:
            url = events_url(canonical_url(env.codex_config.chatgpt_base_url))
        except SinkSpecError as exc:
            return SinkDisabled(str(exc))
        credentials = CredentialSource(env.codex_home)
        current = credentials.current()
        if isinstance(current, AuthUnavailable):
            return SinkDisabled(current.reason)
        try:
            proxy = _announce_proxy(self.key, url, env)
        except SinkSpecError as exc:
            return SinkDisabled(str(exc))
        return HttpSink(self.key, url, ChatGptAuth(credentials), env.policy, proxy)


def _announce_proxy(key: str, url: str, env: SinkEnv) -> Proxy | None:
    proxy = proxy_for(url)
    if proxy is not None:
        env.logger.info("analytics sink %s: through the proxy %s", key, proxy.url)
    return proxy


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


def parse_codex(spec: str) -> CodexSinkSpec:
    if spec != CODEX_DEFAULT_FORM:
        raise SinkSpecError(f"the codex sink takes no argument: --sink codex (got {spec})")
    return CodexSinkSpec()


def build_body(payloads: list[bytes]) -> bytes:
    """``{"events":[p1,p2,...]}`` by byte concatenation: payloads are never re-encoded."""
    return b'{"events":[' + b",".join(payloads) + b"]}"


def idempotency_key(event_ids: list[str]) -> str:
    return hashlib.sha256(",".join(event_ids).encode()).hexdigest()


async def _read_prefix(response: aiohttp.ClientResponse, limit: int) -> bytes:
    data = bytearray()
    while len(data) < limit:
        chunk = await response.content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


class Proxy(NamedTuple):
    url: str  # without credentials: fit for output
    headers: dict[str, str] | None = None  # Proxy-Authorization, from the URL's credentials
    password: str | None = None  # masked in errors


def proxy_for(url: str) -> Proxy | None:
    """The forward proxy the environment names for ``url``, as curl, requests and codex
    itself (reqwest) read it: ``HTTPS_PROXY``/``https_proxy`` for https, ``HTTP_PROXY`` for
    http, none for a host ``NO_PROXY`` lists (``*``: none at all); credentials in the proxy URL
    authenticate to the proxy. A loopback sink never goes through a proxy (a proxy cannot
    reach this machine's loopback). None: connect directly. Raises :class:`SinkSpecError` for
    a proxy URL that is not ``http://`` (aiohttp speaks to HTTP proxies only)."""
    parts = urlsplit(url)
    host = parts.hostname
    if host is None or _is_loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass(host):  # NO_PROXY (the environment's, on Linux)
        return None
    raw = proxies.get(parts.scheme)
    if not raw:
        return None
    proxy = urlsplit(raw if "://" in raw else f"http://{raw}")
    if proxy.scheme != "http" or not proxy.hostname:
        raise SinkSpecError(f"{parts.scheme.upper()}_PROXY: only an http:// proxy is supported")
    netloc = proxy.netloc.rpartition("@")[2]
    bare = urlunsplit(("http", netloc, proxy.path, "", ""))
    if proxy.username is None:
        return Proxy(bare)
    password = unquote(proxy.password or "")
    basic = aiohttp.encode_basic_auth(unquote(proxy.username), password)
    return Proxy(bare, {"Proxy-Authorization": basic}, password or None)


class HttpSink:
    groups_by_originator = True

    def __init__(self, key: str, url: str, auth: SinkAuth, policy: RetryPolicy,
                 proxy: Proxy | None = None) -> None:
        self._key = key
        self._url = url
        self._auth = auth
        self._policy = policy
        self._proxy = proxy
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

    def credentials_version(self) -> object:
        """Changes when the credentials may have changed (a 401 is then worth a retry)."""
        return self._auth.version()

    async def send(self, batch: Batch) -> SendResult:
        version = self._auth.version()
        auth = self._auth.headers()
        if isinstance(auth, AuthUnavailable):
            return SendResult(Verdict.RETRY, error=auth.reason, auth_failed=True)
        secrets = self._auth.secrets()
        proxy = self._proxy.url if self._proxy else None
        proxy_headers = self._proxy.headers if self._proxy else None
        if self._proxy is not None and self._proxy.password:
            secrets = (*secrets, self._proxy.password)
        headers = {
            **auth,
            "Content-Type": "application/json",
            EVENT_IDS_HEADER: ",".join(batch.event_ids),
            IDEMPOTENCY_HEADER: idempotency_key(batch.event_ids),
        }
        if batch.originator:
            headers["originator"] = _HEADER_UNSAFE.sub("", batch.originator)
        try:
            async with self._get_session().post(
                self._url, data=build_body(batch.payloads), headers=headers,
                allow_redirects=False, proxy=proxy, proxy_headers=proxy_headers,
            ) as response:
                status = response.status
                verdict = classify_status(status)
                if verdict is Verdict.DELIVERED:
                    # Read the answer whole (it goes back to the pool then): our collector
                    # lists the events it refused one by one.
                    answer = await _read_prefix(response, _ANSWER_BODY_BYTES)
                    refused = refused_events(answer, batch.event_ids)
                    return SendResult(Verdict.DELIVERED, refused=[
                        RefusedEvent(r.position, self._clean(r.reason, secrets))
                        for r in refused])
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                # Read enough that a credential echoed in the body is masked whole (a cut one
                # would leave a prefix behind); only the first few hundred characters are kept.
                snippet = (await _read_prefix(response, _ERROR_BODY_BYTES)).decode(
                    "utf-8", "replace"
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return SendResult(Verdict.RETRY, error=self._clean(error, secrets), unreachable=True)
        auth_failed = status == 401
        if auth_failed:
            # Not the events' fault: they stay pending until the credentials work (a refreshed
            # token is tried at once, see the shipper).
            verdict = Verdict.RETRY
        error = f"HTTP {status}" + (f": {snippet.strip()}" if snippet.strip() else "")
        return SendResult(
            verdict,
            error=self._clean(error, secrets),
            retry_after_s=retry_after,
            auth_failed=auth_failed and self._auth.version() == version,
            too_large=status == 413,
        )

    @staticmethod
    def _clean(error: str, secrets: tuple[str, ...]) -> str:
        return truncate(redact(" ".join(error.split()), secrets))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
