"""A credential goes only to the party that issued it: the ChatGPT login to codex's own
endpoint, a collector's token to that collector, and nothing to a sink with no token."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from codex_rpc_analytics.delivery import Delivery, HttpSinkSpec, RetryPolicy, SinkSpec
from tests.delivery.support import (
    ACCESS_TOKEN,
    ACCOUNT_ID,
    Collector,
    make_event,
    outbox_rows,
    wait_until,
)

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")
TEAM_TOKEN = "cra_ingest_4F1d2C3b5A6978e0D1c2B3a4F5e6D7c8"


def _delivery(state_dir: Path, spec: SinkSpec, codex_home: Path, policy: RetryPolicy) -> Delivery:
    return Delivery(state_dir=state_dir, sinks=[spec], codex_home=codex_home,
                    retry_policy=policy, batch_linger_s=0.05,
                    logger=logging.getLogger("test.delivery"))


def _no_chatgpt_login_in(received: Any) -> None:
    for request in received:
        headers = {name.lower(): value for name, value in request.headers.items()}
        assert "chatgpt-account-id" not in headers
        blob = repr(request.headers) + request.body.decode()
        assert ACCESS_TOKEN not in blob and ACCOUNT_ID not in blob


@pytest.mark.parametrize("token", ["file", "none"])
async def test_a_collector_sink_gets_its_own_token_or_none_never_the_chatgpt_login(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,  # holds a ChatGPT login: it must stay at home
    state_dir: Path,
    fast_policy: RetryPolicy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    token: str,
) -> None:
    server = await aiohttp_server(collector.app())
    base = f"http://127.0.0.1:{server.port}/team/"
    spec = HttpSinkSpec(base)
    if token == "file":
        token_file = tmp_path / "collector.token"
        token_file.write_text(TEAM_TOKEN + "\n")
        token_file.chmod(0o600)
        spec = HttpSinkSpec(base, token_file=str(token_file))
    delivery = _delivery(state_dir, spec, codex_home, fast_policy)
    delivery.start()
    delivery.submit([make_event(i) for i in range(3)])
    result = await delivery.flush_async(5)
    await delivery.close_async(2)
    assert result.complete and result.sinks[base].delivered == 3
    (request,) = collector.requests
    _no_chatgpt_login_in(collector.requests)
    if token == "file":
        assert request.headers["Authorization"] == f"Bearer {TEAM_TOKEN}"
    else:
        assert "Authorization" not in request.headers
    assert TEAM_TOKEN not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_token_from_an_unset_environment_variable_keeps_events_pending_until_set(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TEAM_INGEST_TOKEN", raising=False)
    server = await aiohttp_server(collector.app())
    spec = HttpSinkSpec(f"http://127.0.0.1:{server.port}/team/", token_env="TEAM_INGEST_TOKEN")
    first = _delivery(state_dir, spec, codex_home, fast_policy)
    first.start()
    first.submit([make_event(i) for i in range(2)])
    await wait_until(lambda: first.status().sinks[0].failed_attempts >= 1)
    assert "TEAM_INGEST_TOKEN is not set" in (first.status().sinks[0].last_error or "")
    down = await first.close_async(0.5)
    assert collector.requests == [] and down.sinks[spec.key].pending == 2

    monkeypatch.setenv("TEAM_INGEST_TOKEN", TEAM_TOKEN)
    later = _delivery(state_dir, spec, codex_home, fast_policy)
    later.start()
    assert (await later.flush_async(5)).complete
    await later.close_async(2)
    assert [r.headers["Authorization"] for r in collector.requests] == [f"Bearer {TEAM_TOKEN}"]
    _no_chatgpt_login_in(collector.requests)


async def test_a_token_file_readable_by_others_is_used_with_one_warning(
    aiohttp_server: Any,
    collector: Collector,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token_file = tmp_path / "collector.token"
    token_file.write_text(TEAM_TOKEN)
    token_file.chmod(0o644)
    server = await aiohttp_server(collector.app())
    spec = HttpSinkSpec(f"http://127.0.0.1:{server.port}/", token_file=str(token_file))
    delivery = _delivery(state_dir, spec, codex_home, fast_policy)
    delivery.start()
    delivery.submit([make_event(1)])
    assert (await delivery.flush_async(5)).complete
    await delivery.close_async(2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "chmod 600" in warnings[0] and "0644" in warnings[0]
    assert TEAM_TOKEN not in caplog.text


@pytest.mark.parametrize("case", [str.lower, str.upper])
async def test_a_credential_echoed_in_an_error_body_is_masked_in_any_letter_case(
    aiohttp_server: Any,
    codex_home: Path,
    state_dir: Path,
    fast_policy: RetryPolicy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: Any,
) -> None:
    async def echo_headers(request: web.Request) -> web.Response:
        # A collector that answers 400 with the request's headers, lowercased (or uppercased),
        # after a long preamble: the echo sits where a 200-byte read would have cut it.
        echo = case(f"authorization: {request.headers.get('Authorization')}")
        return web.Response(status=400, text="x" * 150 + " " + echo)

    app = web.Application()
    app.router.add_post("/{tail:.*}", echo_headers)
    server = await aiohttp_server(app)
    token_file = tmp_path / "collector.token"
    token_file.write_text(TEAM_TOKEN)
    token_file.chmod(0o600)
    spec = HttpSinkSpec(f"http://127.0.0.1:{server.port}/", token_file=str(token_file))
    delivery = _delivery(state_dir, spec, codex_home, fast_policy)
    delivery.start()
    delivery.submit([make_event(1)])
    await delivery.flush_async(5)
    await delivery.close_async(2)
    last_error = delivery.status().sinks[0].last_error or ""
    assert "HTTP 400" in last_error and "***" in last_error
    stored = outbox_rows(state_dir, "SELECT last_error FROM deliveries")
    for text in (last_error, caplog.text, repr(stored)):
        assert TEAM_TOKEN.lower() not in text.lower()
        assert TEAM_TOKEN[:12].lower() not in text.lower()  # not even a cut-off prefix
