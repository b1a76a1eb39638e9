"""Who an HTTP sink proves itself to, and with what: each sink carries only its own credential.

* :class:`ChatGptAuth`: the user's ChatGPT access token and account id from codex's
  ``auth.json``. Only the ``codex`` sink uses it: those credentials were issued by OpenAI and go
  to codex's own ``chatgpt_base_url``, nowhere else.
* :class:`BearerTokenAuth`: a token configured for one sink (a team collector's ingest token),
  read from a file (re-read when the file changes) or from an environment variable named in the
  config file. Sent as ``Authorization: Bearer <token>``.
* :class:`NoAuth`: a sink with no configured token sends no ``Authorization`` at all.

``headers()`` returns the credential headers, or :class:`AuthUnavailable` (a reason that names no
secret) when the credential cannot be read right now; ``version()`` changes whenever the
credential may have changed, so a sink that got 401 can retry as soon as it is replaced;
``secrets()`` lists what must be masked in any error text.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Protocol

from .codex_auth import AuthUnavailable, ChatGptCredentials, CredentialSource
from .file_stamp import ReloadingFile

# What a bearer token may hold: printable ASCII without spaces (RFC 6750's b64token and more).
_TOKEN = re.compile(r"[\x21-\x7e]+")
# A token file is tiny; anything larger is not a token file.
_MAX_TOKEN_FILE_BYTES = 16 * 1024


class SinkAuth(Protocol):
    def headers(self) -> dict[str, str] | AuthUnavailable: ...

    def version(self) -> object: ...

    def secrets(self) -> tuple[str, ...]: ...


class NoAuth:
    def headers(self) -> dict[str, str]:
        return {}

    def version(self) -> object:
        return None

    def secrets(self) -> tuple[str, ...]:
        return ()


class ChatGptAuth:
    """The codex sink's credentials, re-read when codex rewrites ``auth.json``."""

    def __init__(self, source: CredentialSource) -> None:
        self._source = source

    def headers(self) -> dict[str, str] | AuthUnavailable:
        credentials = self._source.current()
        if isinstance(credentials, AuthUnavailable):
            return AuthUnavailable(f"ChatGPT login unavailable: {credentials.reason}")
        return {
            "Authorization": f"Bearer {credentials.access_token}",
            "chatgpt-account-id": credentials.account_id,
        }

    def version(self) -> object:
        return self._source.current()

    def secrets(self) -> tuple[str, ...]:
        credentials = self._source.current()
        if isinstance(credentials, ChatGptCredentials):
            return credentials.secrets
        return ()


def check_token(token: str, where: str) -> str | AuthUnavailable:
    token = token.strip()
    if not token:
        return AuthUnavailable(f"{where} is empty")
    if not _TOKEN.fullmatch(token):
        # Never quote the value: it is a credential, however malformed.
        return AuthUnavailable(f"{where} does not hold a single token (spaces or control bytes)")
    return token


class BearerTokenAuth:
    """A sink's own token, from a file or an environment variable."""

    def __init__(self, *, token_file: Path | None = None, token_env: str | None = None) -> None:
        if (token_file is None) == (token_env is None):
            raise ValueError("exactly one of token_file and token_env")
        self._file = token_file
        self._env = token_env
        self._reloading = ReloadingFile(token_file, self._load) if token_file else None
        self._current: str | AuthUnavailable = AuthUnavailable("not loaded")
        self._loaded = False

    @property
    def source(self) -> str:
        """Where the token comes from, for messages (never the token)."""
        if self._file is not None:
            return f"token file {self._file}"
        return f"environment variable {self._env}"

    def loose_permissions(self) -> int | None:
        """The token file's mode when others than its owner may read it, else None."""
        if self._file is None:
            return None
        try:
            mode = stat.S_IMODE(os.stat(self._file).st_mode)
        except OSError:
            return None
        return mode if mode & 0o077 else None

    def _load(self) -> str | AuthUnavailable:
        if self._env is not None:
            value = os.environ.get(self._env)
            if value is None:
                return AuthUnavailable(f"environment variable {self._env} is not set")
            return check_token(value, f"environment variable {self._env}")
        assert self._file is not None
        try:
            with open(self._file, "rb") as handle:
                raw = handle.read(_MAX_TOKEN_FILE_BYTES + 1)
        except OSError as exc:
            return AuthUnavailable(
                f"cannot read token file {self._file}: {exc.strerror or type(exc).__name__}"
            )
        if len(raw) > _MAX_TOKEN_FILE_BYTES:
            return AuthUnavailable(f"token file {self._file} is too large to be a token")
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return AuthUnavailable(f"token file {self._file} is not ASCII text")
        return check_token(text, f"token file {self._file}")

    def current(self) -> str | AuthUnavailable:
        if self._env is not None:
            if not self._loaded:  # the environment of a process does not change under it
                self._current, self._loaded = self._load(), True
            return self._current
        assert self._reloading is not None
        return self._reloading.current()

    def headers(self) -> dict[str, str] | AuthUnavailable:
        token = self.current()
        if isinstance(token, AuthUnavailable):
            return token
        return {"Authorization": f"Bearer {token}"}

    def version(self) -> object:
        return self.current()

    def secrets(self) -> tuple[str, ...]:
        token = self.current()
        return (token,) if isinstance(token, str) else ()
