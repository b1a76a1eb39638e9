"""The config file as an IDE-launched proxy and a user's `flush` meet it: sinks and tokens
without flags, a bad file that never breaks the codex session, `enabled = false`, and the
proxy's refusal of the `codex` sink."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.delivery.support import Collector, write_chatgpt_auth
from tests.proxy.support import CLI, client_bytes, jsonl_events, scripted
from tests.support import recorded_events, transcript

SESSION = "gating_g1_no_analytics_section"
TEAM_TOKEN = "cra_ingest_0123456789abcdef0123456789abcdef"
STATUS = b'{"id":7,"method":"rpcAnalytics/status"}\n'


def _env(config: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "CODEX_RPC_ANALYTICS_CONFIG": str(config), **extra}


def _run(args: list[str], env: dict[str, str], stdin: bytes = b"",
         timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], input=stdin, env=env, capture_output=True,
                          timeout=timeout, check=False)


def test_the_proxy_refuses_the_codex_sink_with_one_line(tmp_path: Path) -> None:
    result = _run(["proxy", "--state-dir", str(tmp_path / "s"), "--sink", "codex", "--", "cat"],
                  dict(os.environ))
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr.count(b"\n") == 1
    assert b"already posts these events" in result.stderr
    assert not (tmp_path / "s").exists()


def test_a_bad_config_file_is_said_once_and_the_proxy_still_relays(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[sinks]]\nurl = "https://collector.example/"\ntoken = "x"\n')
    state = tmp_path / "state"
    sent = STATUS + b"\x00\xff not json\n" + b"x" * 100_000
    result = _run(["proxy", "--state-dir", str(state), "--", "cat"], _env(config), sent)
    assert result.returncode == 0
    assert result.stdout == sent  # every byte, the extension request included: analytics off
    warning = result.stderr.decode()
    assert warning.count("\n") == 1 and warning.startswith("codex-rpc-analytics: warning: ")
    assert f"{config}:3: sinks[0].token:" in warning and "analytics are off" in warning
    assert not state.exists()  # no outbox: nothing recorded


def test_enabled_false_stops_everything_recording_included(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("enabled = false\n")
    state, sink, record = tmp_path / "state", tmp_path / "events.jsonl", tmp_path / "rec.jsonl"
    child = scripted(transcript(SESSION))
    sent = client_bytes(transcript(SESSION))
    result = _run(["proxy", "--state-dir", str(state), "--sink", f"jsonl:{sink}", "--record",
                   str(record), "--", *child], _env(config), sent)
    assert result.returncode == 0, result.stderr
    assert b"enabled = false" in result.stderr and result.stderr.count(b"\n") == 1
    assert not state.exists() and not sink.exists() and not record.exists()
    quiet = _run(["proxy", "--state-dir", str(state), "--", "cat"], _env(config), STATUS)
    assert quiet.stdout == STATUS and quiet.stderr == b""  # rpcAnalytics/* is not ours now
    flush = _run(["flush", "--state-dir", str(state)], _env(config))
    assert flush.returncode == 1 and b"enabled = false" in flush.stderr


async def _serve(collector: Collector) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(collector.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def _run_async(args: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[int, bytes]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, env=env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(stdin), 60)
    assert process.returncode is not None
    return process.returncode, stderr


async def test_an_ide_launched_proxy_ships_to_the_configured_sinks_with_their_tokens(
    tmp_path: Path,
) -> None:
    collector = Collector()
    runner, port = await _serve(collector)
    try:
        codex_home = tmp_path / "codex-home"
        write_chatgpt_auth(codex_home)  # logged in: still, the collector never sees it
        config = tmp_path / "config.toml"
        config.write_text(
            f'state_dir = "state"\n[batch]\nlinger_seconds = 0.05\n'
            f'[[sinks]]\nurl = "http://127.0.0.1:{port}/team/"\ntoken_env = "TEAM_TOKEN"\n'
            f'[[sinks]]\nurl = "jsonl:events.jsonl"\n')
        env = _env(config, TEAM_TOKEN=TEAM_TOKEN, CODEX_HOME=str(codex_home))
        status, stderr = await _run_async(["proxy", "--", *scripted(transcript(SESSION))], env,
                                          client_bytes(transcript(SESSION)))
        assert status == 0, stderr
        expected = recorded_events(SESSION)
        assert jsonl_events(tmp_path / "events.jsonl") == expected
        posted = [json.dumps(e, separators=(",", ":")).encode()
                  for r in collector.accepted for e in json.loads(r.body)["events"]]
        assert posted == expected
        headers: dict[str, Any] = collector.accepted[0].headers
        assert headers["Authorization"] == f"Bearer {TEAM_TOKEN}"
        assert "chatgpt-account-id" not in headers
        assert (tmp_path / "state" / "outbox.sqlite3").exists()
    finally:
        await runner.cleanup()


async def test_flush_gives_a_pending_sink_the_token_the_config_file_sets(tmp_path: Path) -> None:
    collector = Collector()
    collector.script = [(503, {})] * 1000  # down while the proxy runs
    runner, port = await _serve(collector)
    try:
        token_file = tmp_path / "team.token"
        token_file.write_text(TEAM_TOKEN + "\n")
        token_file.chmod(0o600)
        url = f"http://127.0.0.1:{port}/team/"
        config = tmp_path / "config.toml"
        config.write_text(f'[[sinks]]\nurl = "{url}"\ntoken_file = "team.token"\n')
        env = _env(config)
        state = tmp_path / "state"
        status, stderr = await _run_async(
            ["proxy", "--state-dir", str(state), "--grace", "0.3", "--", *scripted(
                transcript(SESSION))], env, client_bytes(transcript(SESSION)))
        assert status == 0, stderr
        assert collector.accepted == []
        collector.script = []  # back up
        status, stderr = await _run_async(["flush", "--state-dir", str(state)], env)
        assert status == 0, stderr
        assert [r.headers["Authorization"] for r in collector.accepted] == [
            f"Bearer {TEAM_TOKEN}"]
        assert TEAM_TOKEN.encode() not in stderr
    finally:
        await runner.cleanup()
