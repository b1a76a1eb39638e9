"""The config file: where it is, what it holds, and a one-line error for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_rpc_analytics.delivery import (
    BatchSettings,
    ConfigError,
    HttpSinkSpec,
    JsonlSinkSpec,
    OutboxSettings,
    Settings,
    load_settings,
    parse_sink_spec,
    resolve_state_dir,
    with_configured_tokens,
)

FULL = """\
# a team's set-up
enabled = true
state_dir = "state"

[batch]
max_events = 50
max_bytes = 65536
linger_seconds = 0.5

[outbox]
retention_days = 7
max_pending_events = 5000

[[sinks]]
url = "https://collector.example.com/"
token_file = "collector.token"

[[sinks]]
url = "http://127.0.0.1:8787/"
token_env = "TEAM_INGEST_TOKEN"

[[sinks]]
url = "jsonl:events.jsonl"
"""


def test_default_location_follows_xdg_and_absent_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert load_settings() == Settings()
    config = tmp_path / "xdg" / "codex-rpc-analytics" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("enabled = false\n")
    assert load_settings() == Settings(path=str(config), enabled=False)
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings().path is None  # ~/.config/codex-rpc-analytics/config.toml: absent


def test_every_setting_is_read_paths_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "team.toml"
    config.write_text(FULL)
    monkeypatch.setenv("CODEX_RPC_ANALYTICS_CONFIG", str(config))
    settings = load_settings()
    assert settings == Settings(
        path=str(config),
        enabled=True,
        state_dir=tmp_path / "state",
        sinks=(
            HttpSinkSpec("https://collector.example.com/",
                         token_file=str(tmp_path / "collector.token")),
            HttpSinkSpec("http://127.0.0.1:8787/", token_env="TEAM_INGEST_TOKEN"),
            JsonlSinkSpec(str(tmp_path / "events.jsonl")),
        ),
        batch=BatchSettings(max_events=50, max_bytes=65536, linger_s=0.5),
        outbox=OutboxSettings(retention_days=7, max_pending_events=5000),
    )
    # Flags override: a --sink naming a configured URL keeps its token; others get none.
    flags = [parse_sink_spec("http://127.0.0.1:8787/"), parse_sink_spec("http://[::1]:9/")]
    assert with_configured_tokens(flags, settings.sinks) == [
        HttpSinkSpec("http://127.0.0.1:8787/", token_env="TEAM_INGEST_TOKEN"),
        HttpSinkSpec("http://[::1]:9/"),
    ]


def test_state_dir_precedence_flag_env_file_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    configured = tmp_path / "from-file"
    assert resolve_state_dir(tmp_path / "flag", configured) == tmp_path / "flag"
    monkeypatch.setenv("CODEX_RPC_ANALYTICS_STATE_DIR", str(tmp_path / "env"))
    assert resolve_state_dir(None, configured) == tmp_path / "env"
    monkeypatch.delenv("CODEX_RPC_ANALYTICS_STATE_DIR")
    assert resolve_state_dir(None, configured) == configured
    assert resolve_state_dir(None, None) == tmp_path / "xdg" / "codex-rpc-analytics"


def test_a_named_config_file_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_RPC_ANALYTICS_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml does not exist.*CONFIG"):
        load_settings()


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        ('[[sinks]]\nurl = "https://c.example/"\ntoken = "tok-123"\n', 3, "sinks[0].token",
         "never written in the config file"),
        ('\n[[sinks]]\nurl = "codex"\n', 3, "sinks[0].url", "already posts these events"),
        ('[[sinks]]\nurl = "jsonl:a"\n[[sinks]]\nurl = "http://example.com/"\n', 4,
         "sinks[1].url", "loopback"),
        ('[[sinks]]\nurl = "https://c.example/"\ntoken_env = "not a name"\n', 3,
         "sinks[0].token_env", "environment variable"),
        ('[[sinks]]\nurl = "https://c.example/"\ntoken_env = "A"\ntoken_file = "f"\n', 3,
         "sinks[0].token_env", "not both"),
        ('[[sinks]]\nurl = "jsonl:x"\ntoken_file = "f"\n', 3, "sinks[0].token_file",
         "only an http(s) sink"),
        ('[[sinks]]\nurl = "https://c.example/"\n[[sinks]]\nurl = "https://c.example/"\n', 4,
         "sinks[1].url", "configured twice"),
        ("[[sinks]]\ntoken_env = \"A\"\n", 1, "sinks[0].url", "needs url"),
        ("[batch]\nmax_events = 500\n", 2, "batch.max_events", "from 1 to 200"),
        ("[batch]\nmax_events = true\n", 2, "batch.max_events", "whole number"),
        ("[batch]\nlinger_seconds = -1\n", 2, "batch.linger_seconds", "number"),
        ("[outbox]\nretention_days = 0\n", 2, "outbox.retention_days", "above 0"),
        ("[outbox]\nmax_pending = 10\n", 2, "outbox.max_pending", "unknown key"),
        ("enabled = 'no'\n", 1, "enabled", "true or false"),
        ("\n\nsinkz = []\n", 3, "sinkz", "unknown key"),
        ("batch = 3\n", 1, "batch", "must be a table"),
        ("state_dir = ''\n", 1, "state_dir", "directory path"),
    ],
)
def test_a_bad_file_is_one_line_naming_file_line_and_key(
    tmp_path: Path, text: str, line: int | None, key: str, fragment: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    where = f"{config}:{line}: " if line is not None else f"{config}: "
    assert message.startswith(where + key + ": "), message
    assert fragment in message and "\n" not in message
    assert "tok-123" not in message  # an inline token is refused without being repeated


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('enabled = true\n[batch\nmax_events = 3\n')
    with pytest.raises(ConfigError, match=rf"^{config}:2: not valid TOML"):
        load_settings(config)
