"""Install the real peer: codex 0.169.0 from npm, and a Python 3.12 venv with the client SDKs.

Both land in one cache root, built once and reused:

    ${CODEX_RPC_ANALYTICS_PEER_CACHE:-${XDG_CACHE_HOME:-~/.cache}/codex-rpc-analytics/codex-0.169.0}
        npm/            package.json + node_modules/@openai/codex… (the native binary inside)
        sdk-venv/       Python 3.12 venv with openai-codex and codex-app-server-sdk
        .lock           flock(2) taken while installing, so concurrent runs wait for each other

An install is finished only when its marker file exists (`npm/.installed`, `sdk-venv/.installed`);
npm installs into a temporary sibling that is renamed into place, the venv (not relocatable) is
built in place and removed again when it is found without its marker.

Every failure raises `PeerUnavailable` with a one-line reason, so tests can skip (or, in CI,
fail) with it. Run as a script to warm the cache:

    .venv/bin/python -m tests.realpeer.peer_install [--codex] [--sdk]   (or, from tests/,
    ../.venv/bin/python -m realpeer.peer_install)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

CODEX_VERSION = "0.169.0"
CODEX_NPM_PACKAGE = f"@openai/codex@{CODEX_VERSION}"
# The official SDK pins its own CLI wheel (openai-codex-cli-bin==0.163.0); we never run that
# binary, the SDK is pointed at the npm 0.169.0 one through launch_args_override.
SDK_REQUIREMENTS: tuple[str, ...] = ("openai-codex==0.163.0", "codex-app-server-sdk==0.4.1")
CACHE_ENV = "CODEX_RPC_ANALYTICS_PEER_CACHE"
NPM_TIMEOUT_S = 600.0
# npm's default retry back-off (10 s…60 s) makes an unreachable registry cost over a minute
# before the reason comes back; keep two retries but with short waits.
NPM_FLAGS = (
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
    "--fetch-retries=2",
    "--fetch-retry-mintimeout=1000",
    "--fetch-retry-maxtimeout=5000",
)
PIP_TIMEOUT_S = 900.0


class PeerUnavailable(RuntimeError):
    """The real peer cannot be installed or run here; `str(exc)` is a one-line reason."""


def cache_root() -> Path:
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "codex-rpc-analytics" / f"codex-{CODEX_VERSION}"


@contextlib.contextmanager
def _cache_lock(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # npm ends with "A complete log of this run can be found in: …"; the reason is above it.
    lines = [ln for ln in lines if "complete log of this run" not in ln]
    return lines[-1][:300] if lines else "(no output)"


def _run(cmd: Sequence[str], *, cwd: Path | None, timeout: float, what: str) -> str:
    try:
        proc = subprocess.run(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerUnavailable(f"{what} timed out after {timeout:.0f} s") from exc
    except OSError as exc:
        raise PeerUnavailable(f"{what} could not start: {exc}") from exc
    if proc.returncode != 0:
        raise PeerUnavailable(
            f"{what} failed (exit {proc.returncode}): {_last_line(proc.stderr or proc.stdout)}"
        )
    return proc.stdout


# ------------------------------------------------------------------------------------------------
# codex from npm


def _find_native_binary(npm_dir: Path) -> Path | None:
    # node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex, or the
    # arm64 sibling; the per-platform package is an optional dependency of @openai/codex.
    pattern = str(
        npm_dir / "node_modules" / "@openai" / "codex-*" / "vendor" / "*" / "bin" / "codex"
    )
    hits = sorted(glob.glob(pattern))
    machine = platform.machine().lower()
    preferred = [h for h in hits if machine in h or (machine == "arm64" and "aarch64" in h)]
    for hit in preferred or hits:
        if os.access(hit, os.X_OK):
            return Path(hit)
    return None


def _check_version(binary: Path) -> None:
    out = _run([str(binary), "--version"], cwd=None, timeout=60, what=f"{binary} --version")
    if CODEX_VERSION not in out:
        raise PeerUnavailable(
            f"{binary} reports {out.strip()!r}, expected codex-cli {CODEX_VERSION}"
        )


def codex_installed(root: Path | None = None) -> Path | None:
    """The cached native binary, or None when it is not installed (never installs)."""
    npm_dir = (root or cache_root()) / "npm"
    if not (npm_dir / ".installed").is_file():
        return None
    return _find_native_binary(npm_dir)


def install_codex(root: Path | None = None) -> Path:
    """Install `@openai/codex@0.169.0` unless cached; return the path of the native binary."""
    root = root or cache_root()
    cached = codex_installed(root)
    if cached is not None:
        return cached
    npm = shutil.which("npm")
    if npm is None:
        raise PeerUnavailable("npm not found on PATH (needed to install @openai/codex)")
    with _cache_lock(root):
        cached = codex_installed(root)  # another process may have finished meanwhile
        if cached is not None:
            return cached
        final = root / "npm"
        if final.exists():
            shutil.rmtree(final)  # unfinished or broken install: no marker
        tmp = Path(tempfile.mkdtemp(prefix="npm.tmp-", dir=root))
        tmp.chmod(0o755)
        try:
            (tmp / "package.json").write_text(
                json.dumps({"name": "codex-peer", "private": True}) + "\n"
            )
            _run(
                [npm, "install", *NPM_FLAGS, CODEX_NPM_PACKAGE],
                cwd=tmp,
                timeout=NPM_TIMEOUT_S,
                what=f"npm install {CODEX_NPM_PACKAGE}",
            )
            binary = _find_native_binary(tmp)
            if binary is None:
                raise PeerUnavailable(
                    f"npm installed {CODEX_NPM_PACKAGE} but no vendor/*/bin/codex for "
                    f"{platform.machine()} (unsupported platform?)"
                )
            _check_version(binary)
            (tmp / ".installed").write_text(f"{CODEX_NPM_PACKAGE} {time.time():.0f}\n")
            os.rename(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    binary = codex_installed(root)
    if binary is None:  # pragma: no cover - rename succeeded, glob must hit
        raise PeerUnavailable(f"codex binary missing under {root / 'npm'} after install")
    return binary


# ------------------------------------------------------------------------------------------------
# Python 3.12 venv with the client SDKs


def _pyenv_root() -> Path:
    env = os.environ.get("PYENV_ROOT")
    if env:
        return Path(env)
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
            if out:
                return Path(out)
    for candidate in (Path("/root/.pyenv"), Path.home() / ".pyenv"):
        if candidate.is_dir():
            return candidate
    return Path.home() / ".pyenv"


def find_python312() -> Path:
    """`$(pyenv root)/versions/3.12.*/bin/python3.12` (newest), else `python3.12` on PATH."""
    root = _pyenv_root()
    hits = glob.glob(str(root / "versions" / "3.12.*" / "bin" / "python3.12"))

    def patch_level(path: str) -> int:
        try:
            return int(Path(path).parents[1].name.split(".")[2])
        except (IndexError, ValueError):
            return -1

    for hit in sorted(hits, key=patch_level, reverse=True):
        if os.access(hit, os.X_OK):
            return Path(hit)
    on_path = shutil.which("python3.12")
    if on_path is not None:
        return Path(on_path)
    raise PeerUnavailable(f"no python3.12 found ({root}/versions/3.12.* missing, none on PATH)")


def sdk_venv_installed(root: Path | None = None) -> Path | None:
    venv = (root or cache_root()) / "sdk-venv"
    python = venv / "bin" / "python"
    if (venv / ".installed").is_file() and python.exists():
        return python
    return None


def install_sdk_venv(root: Path | None = None) -> Path:
    """Build (once) the 3.12 venv with the SDK packages; return its `bin/python`."""
    root = root or cache_root()
    cached = sdk_venv_installed(root)
    if cached is not None:
        return cached
    base = find_python312()
    with _cache_lock(root):
        cached = sdk_venv_installed(root)
        if cached is not None:
            return cached
        venv = root / "sdk-venv"
        if venv.exists():
            shutil.rmtree(venv)
        try:
            _run(
                [str(base), "-m", "venv", str(venv)],
                cwd=None,
                timeout=300,
                what="python3.12 -m venv",
            )
            python = venv / "bin" / "python"
            _run(
                [str(python), "-m", "pip", "install", "--quiet", *SDK_REQUIREMENTS],
                cwd=None,
                timeout=PIP_TIMEOUT_S,
                what=f"pip install {' '.join(SDK_REQUIREMENTS)}",
            )
            _run(
                [str(python), "-c", "import openai_codex, codex_app_server_sdk"],
                cwd=None,
                timeout=120,
                what="importing the SDKs",
            )
            (venv / ".installed").write_text(" ".join(SDK_REQUIREMENTS) + "\n")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
    return venv / "bin" / "python"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--codex", action="store_true", help="install codex only")
    parser.add_argument("--sdk", action="store_true", help="build the SDK venv only")
    args = parser.parse_args(argv)
    both = not (args.codex or args.sdk)
    try:
        if args.codex or both:
            started = time.monotonic()
            print(f"codex: {install_codex()} ({time.monotonic() - started:.1f} s)")
        if args.sdk or both:
            started = time.monotonic()
            print(f"sdk python: {install_sdk_venv()} ({time.monotonic() - started:.1f} s)")
    except PeerUnavailable as exc:
        print(f"unavailable: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
