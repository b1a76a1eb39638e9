"""Ingest tokens: who may write to the collector, and the name stored with their events.

The tokens file holds one token a line as ``NAME sha256:HEX`` (``#`` starts a comment): the
name becomes the ``source`` of every event sent with that token, and only the token's SHA-256
is at rest. A token is 32 random bytes behind a recognisable prefix (``cra_ingest_``, so a
leaked one is easy to find in a secret scanner), which makes a plain SHA-256 as strong as a
slow password hash would be for a human secret; GitHub and PyPI store API tokens the same way.

The two kinds never mix. An ingest token starts with ``cra_ingest_`` and a dashboard read
token with ``cra_read_``; each file's first line names its kind, :func:`add_token` refuses to
add a token to a file of the other kind, and a :class:`TokenBook` only ever matches tokens of
its own prefix: a read token that ended up in the ingest file (a copy-paste, ``--tokens`` given
the wrong file) still cannot write events, and an ingest token cannot read the dashboard.

Revoking is deleting the line. The collector re-reads the file when its size, mtime or inode
changes (one ``stat`` per request, about a microsecond; the stamp of
``delivery/file_stamp.py``), so edits and ``collect token add`` apply to the next request
without a restart. A presented token is hashed and compared with every entry by
:func:`hmac.compare_digest`, without stopping at a match, so the time taken says nothing
about which entry matched or how much of a hash was right.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from ..delivery.file_stamp import UNREADABLE, FileStamp, file_stamp

TOKEN_PREFIX = "cra_ingest_"
TOKENS_FILENAME = "collector-tokens"
# Read tokens open the dashboard (report/web.py); they live in a file of their own, so an
# ingest token cannot read the team's figures and a read token cannot write events.
READ_TOKEN_PREFIX = "cra_read_"
READ_TOKENS_FILENAME = "collector-read-tokens"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_LINE = re.compile(r"^(\S+)\s+sha256:([0-9a-f]{64})$")
_HEADER = "# codex-rpc-analytics collector {kind} tokens: NAME sha256:HEX, one a line\n"
_HEADER_LINE = re.compile(r"^# codex-rpc-analytics collector (ingest|read) tokens\b")


class TokenFileError(Exception):
    """The tokens file cannot be used as asked; one line, fit for a CLI error."""


class _Entry(NamedTuple):
    name: str
    digest: bytes


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_token(prefix: str = TOKEN_PREFIX) -> str:
    return prefix + secrets.token_urlsafe(32)


def _kind(read: bool) -> str:
    return "read" if read else "ingest"


def file_kind(text: str) -> str | None:
    """``"ingest"`` or ``"read"`` from a tokens file's first line, None without that line."""
    first = text.split("\n", 1)[0]
    match = _HEADER_LINE.match(first)
    return match.group(1) if match else None


def add_token(path: Path, name: str, *, read: bool = False) -> str:
    """Create a token for ``name``, append its hash to ``path`` (0600, tightened if it was
    looser) and return the token: the only time it exists in clear. Several tokens may share
    a name (rotation). ``read``: a dashboard read token (its own prefix and file) rather than
    an ingest token. A file whose first line says it holds the other kind is refused."""
    if not NAME_PATTERN.match(name):
        raise TokenFileError(
            f"token name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit")
    token = new_token(READ_TOKEN_PREFIX if read else TOKEN_PREFIX)
    line = f"{name} sha256:{hash_token(token).hex()}\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.fchmod(fd, 0o600)  # an older file, or one made by hand under a loose umask
            text = _read_all(fd).decode("utf-8", "replace")
            kind = file_kind(text)
            if kind is not None and kind != _kind(read):
                other = "--read-tokens" if kind == "read" else "--tokens"
                raise TokenFileError(
                    f"{path} holds {kind} tokens, not {_kind(read)} tokens: "
                    f"{'drop --read' if kind == 'ingest' else 'add --read'} or name the "
                    f"{_kind(read)} tokens file (not {other} {path})")
            if not text:
                os.write(fd, _HEADER.format(kind=_kind(read)).encode())
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise TokenFileError(f"cannot write tokens file {path}: {exc.strerror}") from None
    return token


def _read_all(fd: int) -> bytes:
    data = bytearray()
    while chunk := os.pread(fd, 1 << 16, len(data)):
        data += chunk
    return bytes(data)


def token_names(path: Path) -> list[str]:
    """The names in a tokens file, in file order (for ``collect token list``)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise TokenFileError(f"cannot read tokens file {path}: {exc.strerror}") from None
    entries, _ = _parse(text)
    return [entry.name for entry in entries]


def _parse(text: str) -> tuple[list[_Entry], list[int]]:
    entries: list[_Entry] = []
    bad_lines: list[int] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None or not NAME_PATTERN.match(match.group(1)):
            bad_lines.append(number)
            continue
        entries.append(_Entry(match.group(1), bytes.fromhex(match.group(2))))
    return entries, bad_lines


class TokenBook:
    """The tokens file as the collector reads it: reloaded when it changes."""

    def __init__(self, path: Path, logger: logging.Logger,
                 stat: Callable[[Path], os.stat_result] = os.stat, *, read: bool = False) -> None:
        self.path = path
        self._read = read
        self._logger = logger
        self._stat = stat
        self._signature: FileStamp | None = None
        self._entries: list[_Entry] = []
        self._loaded = False
        self._warned_mode: int | None = None
        self.reload_if_changed()

    def __len__(self) -> int:
        return len(self._entries)

    def reload_if_changed(self) -> None:
        signature = file_stamp(self.path, self._stat)
        if signature == UNREADABLE:
            # Keep the tokens we have; say so once per change of state.
            if self._signature != UNREADABLE:
                self._logger.warning("cannot look at tokens file %s: keeping the %d tokens "
                                     "loaded before", self.path, len(self._entries))
                self._signature = UNREADABLE
            return
        if self._loaded and signature == self._signature:
            return
        self._loaded = True
        self._signature = signature
        if signature is None:
            self._entries = []
            if self._read:  # the dashboard is optional: not worth a warning
                self._logger.info(
                    "no read tokens file at %s: the dashboard at / answers 401 until one is "
                    "added with `codex-rpc-analytics collect token add --read NAME`", self.path)
                return
            self._logger.warning(
                "no tokens file at %s: every ingest request is refused (401) until one is "
                "added with `codex-rpc-analytics collect token add NAME`", self.path)
            return
        self._keep_private()
        try:
            text = self.path.read_text(errors="replace")
        except OSError as exc:
            self._logger.warning("cannot read tokens file %s: %s", self.path, exc.strerror)
            return
        kind = file_kind(text)
        if kind is not None and kind != _kind(self._read):
            self._entries = []
            self._logger.warning(
                "tokens file %s holds %s tokens, not %s tokens: none of them is accepted here "
                "(give it to %s)", self.path, kind, _kind(self._read),
                "--read-tokens" if kind == "read" else "--tokens")
            return
        self._entries, bad_lines = _parse(text)
        for number in bad_lines:
            # The line itself is not logged: it may hold a token pasted by mistake.
            self._logger.warning("tokens file %s:%d: not `NAME sha256:HEX`; line ignored",
                                 self.path, number)
        self._logger.info("tokens file %s: %d tokens", self.path, len(self._entries))

    def _keep_private(self) -> None:
        """The file names everyone who holds a token: 0600 when created; an older or
        hand-made one is tightened (or, not ours, said once)."""
        try:
            st = self._stat(self.path)
        except OSError:
            return
        mode = st.st_mode & 0o777
        if not mode & 0o077 or self._warned_mode == mode:
            return
        self._warned_mode = mode
        if st.st_uid == os.getuid():
            try:
                os.chmod(self.path, 0o600)
            except OSError:
                pass
            else:
                self._logger.warning("tokens file %s was readable by others (mode %04o); "
                                     "made it 0600", self.path, mode)
                return
        self._logger.warning("tokens file %s is readable by others (mode %04o); chmod 600 it",
                             self.path, mode)

    def source_of(self, token: str) -> str | None:
        """The name of the entry whose hash matches ``token``, or None (constant time in the
        number of entries, whatever matches). Only tokens of this book's kind (prefix) match."""
        self.reload_if_changed()
        if not token.startswith(READ_TOKEN_PREFIX if self._read else TOKEN_PREFIX):
            return None
        digest = hash_token(token)
        found: str | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest) and found is None:
                found = entry.name
        return found


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
