"""What codex's ``config.toml`` says about analytics.

See real-codex-peer.md §3.1 and analytics-events.md §10.3.

Supported, read once when a sink is opened:

* top-level ``chatgpt_base_url`` and ``[analytics] enabled``;
* the active profile, when ``config.toml`` names it with top-level ``profile = "x"``: its
  ``[profiles.x.analytics] enabled`` and ``profiles.x.chatgpt_base_url`` override the top-level
  values, as codex's profile values do;
* ``CODEX_APP_SERVER_CHATGPT_BASE_URL``, which overrides the file (codex treats it as an override).

Not visible from here: a ``--profile`` flag or ``-c key=value`` overrides given to the codex
process itself. ``[analytics] enabled = false`` is the user's opt-out and it is total: every sink
is disabled, not only the codex one (the local outbox still records, for the user's own
``stats``). A config file that cannot be read or parsed counts as an opt-out: an opt-out we
cannot read must not be ignored.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec

DEFAULT_CHATGPT_BASE_URL = "https://chatgpt.com/backend-api/"
BASE_URL_ENV = "CODEX_APP_SERVER_CHATGPT_BASE_URL"


def resolve_codex_home(explicit: Path | None = None) -> Path:
    """Explicit argument > ``$CODEX_HOME`` > ``~/.codex``, as codex resolves it."""
    if explicit is not None:
        return explicit.expanduser()
    env = os.environ.get("CODEX_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".codex"


class CodexConfig(msgspec.Struct, frozen=True):
    analytics_enabled: bool = True
    chatgpt_base_url: str = DEFAULT_CHATGPT_BASE_URL
    profile: str | None = None
    # Set when the file exists but could not be used; the HTTP sink is then disabled.
    error: str | None = None


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def load_codex_config(codex_home: Path) -> CodexConfig:
    base_env = os.environ.get(BASE_URL_ENV) or None
    path = codex_home / "config.toml"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return CodexConfig(chatgpt_base_url=base_env or DEFAULT_CHATGPT_BASE_URL)
    except OSError as exc:
        return CodexConfig(error=f"cannot read {path}: {exc.strerror or exc}")
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return CodexConfig(error=f"cannot parse {path}: {exc}")

    profile_name = doc.get("profile") if isinstance(doc.get("profile"), str) else None
    profile = _table(_table(doc.get("profiles")).get(profile_name)) if profile_name else {}

    enabled: object = True
    for layer in (_table(doc.get("analytics")), _table(profile.get("analytics"))):
        if "enabled" in layer:
            enabled = layer["enabled"]
    if not isinstance(enabled, bool):
        return CodexConfig(error=f"{path}: analytics.enabled must be true or false")

    base: object = DEFAULT_CHATGPT_BASE_URL
    for layer in (doc, profile):
        if "chatgpt_base_url" in layer:
            base = layer["chatgpt_base_url"]
    if not isinstance(base, str) or not base:
        return CodexConfig(error=f"{path}: chatgpt_base_url must be a non-empty string")
    return CodexConfig(
        analytics_enabled=enabled, chatgpt_base_url=base_env or base, profile=profile_name
    )


def codex_opt_out(config: CodexConfig) -> str | None:
    """Why no event may leave this machine (codex's ``[analytics] enabled = false``, or a
    config that cannot be read, which counts as an opt-out), or None."""
    if config.error is not None:
        return f"{config.error} (an unreadable codex config counts as an opt-out)"
    if not config.analytics_enabled:
        return "analytics are disabled in codex's config.toml ([analytics] enabled = false)"
    return None
