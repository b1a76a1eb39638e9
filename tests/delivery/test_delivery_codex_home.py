"""auth.json and config.toml read the way codex reads them; secrets never in reprs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from codex_rpc_analytics.delivery import (
    AuthUnavailable,
    ChatGptCredentials,
    load_chatgpt_credentials,
    load_codex_config,
    resolve_codex_home,
)
from codex_rpc_analytics.delivery.codex_auth import CredentialSource
from tests.delivery.support import ACCESS_TOKEN, ACCOUNT_ID, write_chatgpt_auth


def _write(home: Path, doc: object) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "auth.json").write_text(json.dumps(doc))


def test_chatgpt_mode(codex_home: Path) -> None:
    creds = load_chatgpt_credentials(codex_home)
    assert creds == ChatGptCredentials(ACCESS_TOKEN, ACCOUNT_ID)
    assert ACCESS_TOKEN not in repr(creds) and ACCOUNT_ID not in repr(creds)


def test_absent_auth_mode_with_tokens_is_chatgpt(tmp_path: Path) -> None:
    _write(tmp_path, {"tokens": {"access_token": "a" * 20, "account_id": "acct-1234"}})
    assert isinstance(load_chatgpt_credentials(tmp_path), ChatGptCredentials)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"OPENAI_API_KEY": "sk-fake-key-123456", "auth_mode": "apikey"}, "API key"),
        # Old files without auth_mode: an API key wins, as older codex preferred it.
        (
            {"OPENAI_API_KEY": "sk-fake-key-123456", "tokens": {"access_token": "a" * 20}},
            "API key",
        ),
        ({"auth_mode": "chatgpt", "tokens": {"access_token": "a" * 20}}, "account id"),
        ({"auth_mode": "chatgpt", "tokens": {"account_id": "acct"}}, "access token"),
        ({"auth_mode": "chatgpt"}, "no ChatGPT tokens"),
        ({}, "not logged in"),
        ([], "not a JSON object"),
    ],
)
def test_unusable_auth(tmp_path: Path, doc: object, reason: str) -> None:
    _write(tmp_path, doc)
    result = load_chatgpt_credentials(tmp_path)
    assert isinstance(result, AuthUnavailable)
    assert reason in result.reason
    assert "sk-fake" not in result.reason


def test_missing_and_invalid_auth_never_quote_the_file(tmp_path: Path) -> None:
    missing = load_chatgpt_credentials(tmp_path)
    assert isinstance(missing, AuthUnavailable) and "not logged in" in missing.reason
    (tmp_path / "auth.json").write_text('{"tokens": {"access_token": "secret-token-xyz"')
    broken = load_chatgpt_credentials(tmp_path)
    assert isinstance(broken, AuthUnavailable) and "not valid JSON" in broken.reason
    assert "secret-token-xyz" not in broken.reason


def test_credential_source_rereads_a_refreshed_file(tmp_path: Path) -> None:
    write_chatgpt_auth(tmp_path, access_token="first-token-aaaa")
    source = CredentialSource(tmp_path)
    first = source.current()
    assert isinstance(first, ChatGptCredentials) and first.access_token == "first-token-aaaa"
    write_chatgpt_auth(tmp_path, access_token="second-token-bbbbbb")
    second = source.current()
    assert isinstance(second, ChatGptCredentials) and second.access_token == "second-token-bbbbbb"


def test_a_refresh_saved_by_rename_is_seen_even_with_the_same_size_and_mtime(
    tmp_path: Path,
) -> None:
    """codex saves auth.json by renaming a new file over it; a refreshed token has the same
    length, and within the file system's clock tick the same mtime: only the inode tells."""
    write_chatgpt_auth(tmp_path, access_token="first-token-aaaa")
    auth = tmp_path / "auth.json"
    source = CredentialSource(tmp_path)
    assert getattr(source.current(), "access_token", None) == "first-token-aaaa"
    before = auth.stat()
    staged = tmp_path / "staged"
    write_chatgpt_auth(staged, access_token="later-token-bbbb")
    new = staged / "auth.json"
    os.utime(new, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert new.stat().st_size == before.st_size
    os.replace(new, auth)
    assert getattr(source.current(), "access_token", None) == "later-token-bbbb"


def test_config_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEX_APP_SERVER_CHATGPT_BASE_URL", raising=False)
    config = load_codex_config(tmp_path)
    assert config.analytics_enabled
    assert config.chatgpt_base_url == "https://chatgpt.com/backend-api/"
    assert config.error is None


@pytest.mark.parametrize(
    ("toml", "enabled"),
    [
        ("[analytics]\nenabled = false\n", False),
        ("[analytics]\nenabled = true\n", True),
        ('profile = "work"\n[profiles.work.analytics]\nenabled = false\n', False),
        (
            'profile = "work"\n[analytics]\nenabled = false\n'
            "[profiles.work.analytics]\nenabled = true\n",
            True,
        ),
        # An inactive profile's opt-out does not apply.
        ('[profiles.other.analytics]\nenabled = false\n', True),
    ],
)
def test_config_analytics_enabled(tmp_path: Path, toml: str, enabled: bool) -> None:
    (tmp_path / "config.toml").write_text(toml)
    assert load_codex_config(tmp_path).analytics_enabled is enabled


def test_base_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODEX_APP_SERVER_CHATGPT_BASE_URL", raising=False)
    (tmp_path / "config.toml").write_text(
        'chatgpt_base_url = "http://127.0.0.1:1/top/"\nprofile = "p"\n'
        '[profiles.p]\nchatgpt_base_url = "http://127.0.0.1:1/profile/"\n'
    )
    assert load_codex_config(tmp_path).chatgpt_base_url == "http://127.0.0.1:1/profile/"
    monkeypatch.setenv("CODEX_APP_SERVER_CHATGPT_BASE_URL", "http://127.0.0.1:1/env/")
    assert load_codex_config(tmp_path).chatgpt_base_url == "http://127.0.0.1:1/env/"


@pytest.mark.parametrize(
    "toml", ["[analytics\n", '[analytics]\nenabled = "no"\n', "chatgpt_base_url = 3\n"]
)
def test_unusable_config_is_an_error(tmp_path: Path, toml: str) -> None:
    (tmp_path / "config.toml").write_text(toml)
    assert load_codex_config(tmp_path).error is not None


def test_codex_home_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "env"))
    assert resolve_codex_home(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_codex_home() == tmp_path / "env"
    monkeypatch.delenv("CODEX_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_codex_home() == tmp_path / ".codex"
