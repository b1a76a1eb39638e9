"""Throwaway `CODEX_HOME` directories for the real codex (shared/docs/real-codex-peer.md §3).

`build_codex_home(dir, port)` writes `config.toml` with every URL on 127.0.0.1:`port`, a custom
provider `probe` without websockets, file-based credentials and no update check, plus an
`auth.json` chosen by `HomeOptions.auth`:

* `"chatgpt"`: a fabricated ChatGPT login (unsigned JWTs, reserved domains, an account id made up
  at run time) — the only mode in which codex sends analytics;
* `"apikey"`: `{"OPENAI_API_KEY": "sk-fake-…", "auth_mode": "apikey"}`;
* `"none"`: no auth.json.

`HomeOptions.analytics_enabled` writes `[analytics] enabled = true|false`, or no section (None).

The tokens are secrets by convention even though fake: they live in the returned `CodexHome`
and in the temporary auth.json, and must not be printed or written anywhere else.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

AuthMode = Literal["chatgpt", "apikey", "none"]
PROVIDER_ID = "probe"


@dataclass(frozen=True)
class HomeOptions:
    auth: AuthMode = "chatgpt"
    analytics_enabled: bool | None = True
    plan_type: str = "plus"
    # Not in real-codex-peer.md §3.1. codex's default OTEL metrics exporter ("statsig") posts to
    # https://ab.chatgpt.com/otlp/v1/metrics; offline, its flush at shutdown stalls ~5 s, which
    # is the bulk of the "5.2 s after EOF" and "3.4 s after SIGTERM" exit times of §6. With
    # `metrics_exporter = "none"` codex exits ~25 ms after SIGTERM. False → §3.1 verbatim.
    otel_metrics_off: bool = True
    # Extra config.toml text: `top_level` lines go before the first table, `provider` lines into
    # `[model_providers.probe]`, `tables` at the end ("{project}"-style placeholders are the
    # caller's business).
    top_level: tuple[str, ...] = ()
    provider: tuple[str, ...] = ()
    tables: str = ""


@dataclass(frozen=True)
class CodexHome:
    path: Path
    port: int
    options: HomeOptions
    account_id: str | None = None
    access_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def auth_path(self) -> Path:
        return self.path / "auth.json"

    def secrets(self) -> list[str]:
        """Every secret-ish string written to auth.json (for redaction)."""
        values = (
            self.access_token,
            self.id_token,
            self.refresh_token,
            self.api_key,
            self.account_id,
        )
        return [v for v in values if v]

    def env(self) -> dict[str, str]:
        return {"CODEX_HOME": str(self.path)}


def config_toml(
    port: int,
    analytics_enabled: bool | None = True,
    otel_metrics_off: bool = True,
    options: HomeOptions | None = None,
) -> str:
    base = f"http://127.0.0.1:{port}"
    extra = options or HomeOptions()
    lines = [
        f'chatgpt_base_url = "{base}/backend-api/"',
        f'openai_base_url = "{base}/v1"',
        'cli_auth_credentials_store = "file"',
        "check_for_update_on_startup = false",
        f'model_provider = "{PROVIDER_ID}"',
        *extra.top_level,
        "",
        f"[model_providers.{PROVIDER_ID}]",
        'name = "probe-fake"',
        f'base_url = "{base}/v1"',
        'wire_api = "responses"',
        "requires_openai_auth = true",
        "supports_websockets = false",
        *extra.provider,
    ]
    if analytics_enabled is not None:
        lines += ["", "[analytics]", f"enabled = {'true' if analytics_enabled else 'false'}"]
    if otel_metrics_off:
        lines += ["", "[otel]", 'metrics_exporter = "none"']
    if extra.tables:
        lines += ["", extra.tables.rstrip("\n")]
    return "\n".join(lines) + "\n"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_jwt(claims: dict[str, Any]) -> str:
    header = {"alg": "none", "typ": "JWT"}
    parts = [json.dumps(header, separators=(",", ":")), json.dumps(claims, separators=(",", ":"))]
    # codex never verifies signatures but wants a non-empty third part.
    return ".".join([*(_b64url(p.encode()) for p in parts), _b64url(b"sig")])


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def chatgpt_auth(account_id: str, plan_type: str = "plus") -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    iat = int(now.timestamp())
    exp = int((now + dt.timedelta(days=30)).timestamp())
    user_id = f"user-{secrets.token_hex(8)}"
    email = "probe@example.invalid"
    auth_claims = {
        "chatgpt_account_id": account_id,
        "chatgpt_plan_type": plan_type,
        "chatgpt_user_id": user_id,
        "user_id": user_id,
    }
    common = {"iss": "https://auth.invalid", "aud": ["probe-client"], "sub": user_id, "iat": iat}
    id_claims = {
        **common,
        "email": email,
        "email_verified": True,
        "exp": exp,
        "https://api.openai.com/auth": auth_claims,
    }
    access_claims = {
        **common,
        "exp": exp,
        "https://api.openai.com/auth": auth_claims,
        "https://api.openai.com/profile": {"email": email},
    }
    return {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": unsigned_jwt(id_claims),
            "access_token": unsigned_jwt(access_claims),
            "refresh_token": f"fake-refresh-{secrets.token_hex(8)}",
            "account_id": account_id,
        },
        "last_refresh": _rfc3339(now),
    }


def build_codex_home(path: Path, port: int, options: HomeOptions | None = None) -> CodexHome:
    """Create (or fill) `path` as a CODEX_HOME pointing at the backend on 127.0.0.1:`port`."""
    options = options or HomeOptions()
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.toml").write_text(
        config_toml(port, options.analytics_enabled, options.otel_metrics_off, options)
    )
    auth_path = path / "auth.json"
    if options.auth == "none":
        auth_path.unlink(missing_ok=True)
        return CodexHome(path=path, port=port, options=options)
    if options.auth == "apikey":
        api_key = f"sk-fake-{secrets.token_hex(12)}"
        _write_private(auth_path, {"OPENAI_API_KEY": api_key, "auth_mode": "apikey"})
        return CodexHome(path=path, port=port, options=options, api_key=api_key)
    account_id = str(uuid.uuid4())
    auth = chatgpt_auth(account_id, options.plan_type)
    _write_private(auth_path, auth)
    tokens = auth["tokens"]
    return CodexHome(
        path=path,
        port=port,
        options=options,
        account_id=account_id,
        access_token=tokens["access_token"],
        id_token=tokens["id_token"],
        refresh_token=tokens["refresh_token"],
    )


def _write_private(path: Path, doc: dict[str, Any]) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(doc, indent=2) + "\n")
