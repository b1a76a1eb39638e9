"""Ingest and read tokens never mix: not through the CLI's file flags, not through a token
pasted into the wrong file; and tokens files are private whatever mode they had."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from codex_rpc_analytics.collector import (
    READ_TOKEN_PREFIX,
    READ_TOKENS_FILENAME,
    TOKEN_PREFIX,
    TOKENS_FILENAME,
    TokenBook,
    TokenFileError,
    add_token,
)
from codex_rpc_analytics.collector.tokens import hash_token
from tests.collector.test_collect_cli import cli

LOGGER = logging.getLogger("test.tokens")


def test_a_read_token_never_lands_in_the_ingest_tokens_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ingest = state / TOKENS_FILENAME
    assert cli("collect", "token", "add", "laptops", state_dir=state).returncode == 0
    before = ingest.read_text()
    mixed = cli("collect", "token", "add", "--read", "lead", "--tokens", str(ingest),
                state_dir=state)
    assert mixed.returncode == 2 and mixed.stdout == ""
    assert mixed.stderr.count("\n") == 1 and "--read-tokens" in mixed.stderr
    assert ingest.read_text() == before
    elsewhere = tmp_path / "dashboard-tokens"
    added = cli("collect", "token", "add", "--read", "lead", "--read-tokens", str(elsewhere),
                state_dir=state)
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith(READ_TOKEN_PREFIX)
    assert "lead sha256:" in elsewhere.read_text()
    assert not (state / READ_TOKENS_FILENAME).exists()
    listed = cli("collect", "token", "list", "--read", "--read-tokens", str(elsewhere),
                 state_dir=state)
    assert listed.stdout.splitlines() == ["lead"]
    # --read-tokens without --read: say so rather than guess.
    guess = cli("collect", "token", "add", "x", "--read-tokens", str(elsewhere), state_dir=state)
    assert guess.returncode == 2 and "--read" in guess.stderr


def test_a_file_of_the_other_kind_is_refused(tmp_path: Path) -> None:
    read_file = tmp_path / "read"
    ingest_file = tmp_path / "ingest"
    add_token(read_file, "lead", read=True)
    add_token(ingest_file, "laptops")
    with pytest.raises(TokenFileError, match="holds read tokens"):
        add_token(read_file, "laptops")
    with pytest.raises(TokenFileError, match="holds ingest tokens"):
        add_token(ingest_file, "lead", read=True)
    assert len(read_file.read_text().splitlines()) == 2  # its header and lead's line
    result = cli("collect", "token", "add", "laptops", "--tokens", str(read_file),
                 state_dir=tmp_path / "state")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "holds read tokens" in result.stderr


def test_collect_refuses_one_file_for_both_kinds(tmp_path: Path) -> None:
    both = tmp_path / "tokens"
    result = cli("collect", "--listen", "127.0.0.1:0", "--tokens", str(both), "--read-tokens",
                 str(both), state_dir=tmp_path / "state")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "files of their own" in result.stderr


def test_a_token_of_the_other_kind_never_matches(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    # Hand-made files without the header (older files, or an operator's copy-paste).
    read_token = READ_TOKEN_PREFIX + "x" * 43
    ingest_token = TOKEN_PREFIX + "y" * 43
    ingest_file = tmp_path / "ingest"
    read_file = tmp_path / "read"
    for path in (ingest_file, read_file):
        path.write_text(f"lead sha256:{hash_token(read_token).hex()}\n"
                        f"laptops sha256:{hash_token(ingest_token).hex()}\n")
        path.chmod(0o600)
    ingest = TokenBook(ingest_file, LOGGER)
    readers = TokenBook(read_file, LOGGER, read=True)
    assert (ingest.source_of(ingest_token), ingest.source_of(read_token)) == ("laptops", None)
    assert (readers.source_of(read_token), readers.source_of(ingest_token)) == ("lead", None)
    # A file whose header names the other kind: nothing of it is accepted, and it is said.
    add_token(tmp_path / "real-read", "lead", read=True)
    assert len(TokenBook(tmp_path / "real-read", LOGGER)) == 0
    assert any("holds read tokens, not ingest tokens" in r.getMessage()
               for r in caplog.records)


def test_existing_tokens_files_are_made_private(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens"
    add_token(path, "alice")
    path.chmod(0o644)
    add_token(path, "bob")
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o640)
    book = TokenBook(path, LOGGER)
    assert path.stat().st_mode & 0o777 == 0o600 and len(book) == 2
    warnings = [r.getMessage() for r in caplog.records if "readable by others" in r.getMessage()]
    assert len(warnings) == 1 and "0640" in warnings[0]


def test_a_second_token_for_a_name_says_it_is_a_rotation(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = cli("collect", "token", "add", "alice", state_dir=state)
    assert "now has" not in first.stderr
    second = cli("collect", "token", "add", "alice", state_dir=state)
    assert second.returncode == 0 and "'alice' now has 2 tokens" in second.stderr
    assert first.stdout != second.stdout
