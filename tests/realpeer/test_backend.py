"""The loopback backend and the CODEX_HOME builder on their own (no codex, no namespace)."""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path

import aiohttp
import pytest

from .backend import CODEX_ANALYTICS_PATH, FakeBackend, ThreadedBackend, sse_body
from .codex_home import HomeOptions, build_codex_home


async def test_analytics_post_is_recorded_byte_exact_with_masked_display() -> None:
    body = b'{"events":[{"event_type":"x","event_params":{"b":1,"a":2}}]}'
    async with FakeBackend() as backend, aiohttp.ClientSession() as http:
        headers = {
            "authorization": "Bearer tok.en.sig",
            "chatgpt-account-id": "acct-1",
            "content-type": "application/json",
        }
        async with http.post(backend.analytics_url, data=body, headers=headers) as response:
            assert response.status == 200
            assert await response.json() == {}
        posts = await backend.wait_for_posts(1, timeout=5)
    (post,) = posts
    assert post.path == CODEX_ANALYTICS_PATH
    assert post.body == body
    assert post.events() == [{"event_type": "x", "event_params": {"b": 1, "a": 2}}]
    assert post.header("authorization") == "Bearer tok.en.sig"
    display = json.dumps(post.display())
    assert "tok.en.sig" not in display and "acct-1" not in display
    assert dict(post.masked_headers())["authorization"] == "Bearer ***(10 chars)"


async def test_responses_stream_other_routes_and_scripted_statuses() -> None:
    async with FakeBackend(analytics_statuses=[500]) as backend, aiohttp.ClientSession() as http:
        async with http.post(f"{backend.openai_base_url}/responses", json={"model": "m"}) as r:
            assert r.status == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert await r.read() == sse_body()
        async with http.get(f"{backend.openai_base_url}/models") as r:
            assert r.status == 404
            assert await r.json() == {"detail": "not found"}
        for expected in (500, 200):
            async with http.post(backend.analytics_url, data=b"{}") as r:
                assert r.status == expected
        assert [p.status for p in backend.posts()] == [500, 200]
        assert backend.responses_requests()[0].json() == {"model": "m"}


async def test_wait_times_out_and_control_endpoint_long_polls() -> None:
    async with FakeBackend() as backend, aiohttp.ClientSession() as http:
        with pytest.raises(TimeoutError):
            await backend.wait_for_posts(1, timeout=0.05)
        control = f"{backend.url}/_realpeer/analytics?count=1&timeout=0.05"
        async with http.get(control) as r:
            assert await r.json() == {"count": 0, "reached": False}
        async with http.post(backend.analytics_url, data=b"{}"):
            pass
        async with http.get(control) as r:
            assert await r.json() == {"count": 1, "reached": True}


def test_threaded_backend_serves_synchronous_callers() -> None:
    import urllib.request

    with ThreadedBackend() as threaded:
        request = urllib.request.Request(threaded.backend.analytics_url, data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        assert len(threaded.wait_for_posts(1, timeout=5)) == 1


def _claims(jwt: str) -> dict[str, object]:
    header, payload, signature = jwt.split(".")
    assert signature
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "none", "typ": "JWT"}
    return dict(json.loads(base64.urlsafe_b64decode(payload + "==")))


def test_codex_home_chatgpt(tmp_path: Path) -> None:
    home = build_codex_home(tmp_path / "h", 4242)
    config = tomllib.loads(home.config_path.read_text())
    assert config["chatgpt_base_url"] == "http://127.0.0.1:4242/backend-api/"
    assert config["openai_base_url"] == "http://127.0.0.1:4242/v1"
    assert config["model_provider"] == "probe"
    assert config["model_providers"]["probe"]["supports_websockets"] is False
    assert config["model_providers"]["probe"]["requires_openai_auth"] is True
    assert config["cli_auth_credentials_store"] == "file"
    assert config["check_for_update_on_startup"] is False
    assert config["analytics"] == {"enabled": True}
    assert config["otel"] == {"metrics_exporter": "none"}
    auth = json.loads(home.auth_path.read_text())
    assert auth["auth_mode"] == "chatgpt" and auth["OPENAI_API_KEY"] is None
    assert auth["tokens"]["account_id"] == home.account_id
    assert auth["tokens"]["access_token"] == home.access_token
    for token in ("id_token", "access_token"):
        claims = _claims(auth["tokens"][token])
        openai_auth = claims["https://api.openai.com/auth"]
        assert isinstance(openai_auth, dict)
        assert openai_auth["chatgpt_account_id"] == home.account_id
        assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int)
        assert claims["exp"] > claims["iat"]
    assert auth["last_refresh"].endswith("Z")
    assert home.auth_path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("options", "auth_mode", "analytics"),
    [
        (HomeOptions(auth="apikey"), "apikey", {"enabled": True}),
        (HomeOptions(auth="none"), None, {"enabled": True}),
        (HomeOptions(analytics_enabled=False), "chatgpt", {"enabled": False}),
        (HomeOptions(analytics_enabled=None, otel_metrics_off=False), "chatgpt", None),
    ],
)
def test_codex_home_variants(
    tmp_path: Path, options: HomeOptions, auth_mode: str | None, analytics: object
) -> None:
    home = build_codex_home(tmp_path / "h", 1, options)
    config = tomllib.loads(home.config_path.read_text())
    assert config.get("analytics") == analytics
    assert ("otel" in config) is options.otel_metrics_off
    if auth_mode is None:
        assert not home.auth_path.exists()
    else:
        assert json.loads(home.auth_path.read_text())["auth_mode"] == auth_mode
