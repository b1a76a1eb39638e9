"""HTTP sinks honour the standard proxy variables, as codex and every HTTP client of a
corporate fleet do: ``HTTPS_PROXY`` (with credentials for the proxy), ``NO_PROXY``; a loopback
sink always connects directly. Real processes: ``flush`` in a subprocess, a real CONNECT proxy
on 127.0.0.1, a real HTTPS collector with a certificate the subprocess trusts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from codex_rpc_analytics.delivery import Outbox
from codex_rpc_analytics.delivery.http_sink import proxy_for
from tests.delivery.support import Collector, make_event

HOST = "collector.test"  # resolvable only by the proxy (which sends it to 127.0.0.1)
PROXY_PASSWORD = "proxy-pass-w0rd"


@dataclass
class ConnectProxy:
    """A forward proxy for https: ``CONNECT host:port`` opens a tunnel to 127.0.0.1:port."""

    seen: list[tuple[str, str | None]] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
            self.seen.append((f"{method} {target}", headers.get("Proxy-Authorization")))
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", int(target.rsplit(":", 1)[1]))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[ConnectProxy]:
    found = ConnectProxy()
    server = await asyncio.start_server(found.handle, "127.0.0.1", 0)
    found.port = server.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        server.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", f"/CN={HOST}", "-addext",
                    f"subjectAltName=DNS:{HOST}"], check=True, capture_output=True, timeout=60)
    return cert, key


async def _serve(collector: Collector, context: ssl.SSLContext | None) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(collector.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return runner, int(runner.addresses[0][1])


def _pending(state: Path, key: str, n: int) -> list[str]:
    outbox = Outbox.open(state)
    try:
        outbox.commit([(t, p, 1.0) for t, p in (make_event(i) for i in range(n))], [key])
        return [row[0] for row in outbox.query("SELECT event_id FROM events ORDER BY seq")]
    finally:
        outbox.close()


async def _flush(state: Path, env: dict[str, str]) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "codex_rpc_analytics", "flush", "--timeout", "10",
        env={**clean, "CODEX_RPC_ANALYTICS_STATE_DIR": str(state), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_an_https_collector_is_reached_through_https_proxy(
    tmp_path: Path, proxy: ConnectProxy, certificate: tuple[Path, Path],
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    collector = Collector()
    runner, port = await _serve(collector, context)
    try:
        key = f"https://{HOST}:{port}/"
        ids = _pending(tmp_path / "state", key, 5)
        code, out = await _flush(tmp_path / "state", {
            "HTTPS_PROXY": f"http://fleet:{PROXY_PASSWORD}@127.0.0.1:{proxy.port}",
            "SSL_CERT_FILE": str(certificate[0])})
        assert code == 0, out
        assert collector.accepted_ids() == ids
        assert [target for target, _ in proxy.seen] == [f"CONNECT {HOST}:{port}"]
        credentials = base64.b64encode(f"fleet:{PROXY_PASSWORD}".encode()).decode()
        assert proxy.seen[0][1] == f"Basic {credentials}"
        assert PROXY_PASSWORD not in out
        # NO_PROXY names the host: no proxy, and this machine cannot resolve the name.
        more = _pending(tmp_path / "state2", key, 2)
        code, out = await _flush(tmp_path / "state2", {
            "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": f"example.com,{HOST}",
            "SSL_CERT_FILE": str(certificate[0])})
        assert code == 1 and "2 events still pending" in out
        assert len(proxy.seen) == 1 and not set(more) & set(collector.accepted_ids())
    finally:
        await runner.cleanup()


async def test_a_loopback_collector_never_goes_through_a_proxy(
    tmp_path: Path, proxy: ConnectProxy,
) -> None:
    collector = Collector()
    runner, port = await _serve(collector, None)
    try:
        ids = _pending(tmp_path / "state", f"http://127.0.0.1:{port}/", 3)
        code, out = await _flush(tmp_path / "state", {
            "HTTP_PROXY": f"http://127.0.0.1:{proxy.port}",
            "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"})
        assert code == 0, out
        assert collector.accepted_ids() == ids and proxy.seen == []
    finally:
        await runner.cleanup()


def test_which_proxy_a_sink_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                 "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for("https://collector.example/x") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://u%40corp:p%3Aw@proxy.corp:3128")
    found = proxy_for("https://collector.example/x")
    assert found is not None and found.url == "http://proxy.corp:3128"
    basic = base64.b64encode(b"u@corp:p:w").decode()
    assert found.headers == {"Proxy-Authorization": f"Basic {basic}"} and found.password == "p:w"
    assert proxy_for("http://localhost:9/") is None and proxy_for("https://[::1]:9/") is None
    monkeypatch.setenv("NO_PROXY", ".example")
    assert proxy_for("https://collector.example/x") is None
    monkeypatch.setenv("NO_PROXY", "*")
    assert proxy_for("https://chatgpt.com/backend-api/") is None
    monkeypatch.setenv("NO_PROXY", "")
    monkeypatch.setenv("HTTPS_PROXY", "socks5://proxy.corp:1080")
    with pytest.raises(ValueError, match="only an http:// proxy"):
        proxy_for("https://collector.example/x")
