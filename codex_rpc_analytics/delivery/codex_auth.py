"""ChatGPT credentials from ``$CODEX_HOME/auth.json``, read the way codex reads them.

codex ships analytics only for a ChatGPT-mode login with an access token and an account id
(analytics-events.md §10.3). Mode resolution:

* ``"auth_mode": "chatgpt"`` -> ChatGPT mode; ``"apikey"`` (or any other value) -> no analytics.
* ``auth_mode`` absent (files written by older codex versions): an ``OPENAI_API_KEY`` wins, as
  older codex preferred the API key when both were present; otherwise ``tokens`` mean ChatGPT
  mode.
* ``tokens.account_id`` is required; it is not dug out of the id token's claims, because codex
  itself discards analytics when the account id is missing.

codex rewrites ``auth.json`` when it refreshes tokens, so :class:`CredentialSource` re-reads the
file whenever its modification time or size changes, at the cost of one ``stat`` per request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .file_stamp import ReloadingFile


class ChatGptCredentials:
    """The two values the analytics POST carries. Its repr never shows them."""

    __slots__ = ("access_token", "account_id")

    def __init__(self, access_token: str, account_id: str) -> None:
        self.access_token = access_token
        self.account_id = account_id

    def __repr__(self) -> str:
        return "ChatGptCredentials(access_token=***, account_id=***)"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ChatGptCredentials)
            and other.access_token == self.access_token
            and other.account_id == self.account_id
        )

    def __hash__(self) -> int:
        return hash((self.access_token, self.account_id))

    @property
    def secrets(self) -> tuple[str, str]:
        return (self.access_token, self.account_id)


class AuthUnavailable:
    """Why there are no usable credentials; ``reason`` is safe to log (it names no secret)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"AuthUnavailable({self.reason!r})"


def _nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def credentials_from_document(doc: Any) -> ChatGptCredentials | AuthUnavailable:
    if not isinstance(doc, dict):
        return AuthUnavailable("auth.json is not a JSON object")
    mode = doc.get("auth_mode")
    tokens = doc.get("tokens")
    if mode is None:
        if _nonempty_str(doc.get("OPENAI_API_KEY")):
            return AuthUnavailable("codex is logged in with an API key, not ChatGPT")
        mode = "chatgpt" if isinstance(tokens, dict) else None
    if mode != "chatgpt":
        if mode is None:
            return AuthUnavailable("codex is not logged in with ChatGPT")
        return AuthUnavailable("codex is logged in with an API key, not ChatGPT")
    if not isinstance(tokens, dict):
        return AuthUnavailable("auth.json has no ChatGPT tokens")
    access = _nonempty_str(tokens.get("access_token"))
    account = _nonempty_str(tokens.get("account_id"))
    if access is None:
        return AuthUnavailable("auth.json has no ChatGPT access token")
    if account is None:
        return AuthUnavailable("auth.json has no ChatGPT account id")
    return ChatGptCredentials(access, account)


def load_chatgpt_credentials(codex_home: Path) -> ChatGptCredentials | AuthUnavailable:
    path = codex_home / "auth.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return AuthUnavailable(f"codex is not logged in ({path} does not exist)")
    except OSError as exc:
        return AuthUnavailable(f"cannot read {path}: {exc.strerror or type(exc).__name__}")
    try:
        doc = json.loads(raw)
    except ValueError:
        # Never include the decoder's message: it quotes the document, tokens included.
        return AuthUnavailable(f"{path} is not valid JSON")
    return credentials_from_document(doc)


class CredentialSource:
    """Current credentials, re-read when ``auth.json`` changes (codex refreshes tokens, and
    saves by renaming a new file over the old one: same size and mtime do not hide it)."""

    def __init__(self, codex_home: Path) -> None:
        self._file = ReloadingFile(codex_home / "auth.json",
                                   lambda: load_chatgpt_credentials(codex_home))

    def current(self) -> ChatGptCredentials | AuthUnavailable:
        return self._file.current()
