"""This machine's own runtime values: the fallback when a server's ``initialize`` result
does not say (older servers, malformed user agents). Read once, handed to the core."""

from __future__ import annotations

import functools
import platform
import sys

from .core.runtime import RuntimeInfo, normalise_arch

_OS_NAMES = {"linux": "linux", "darwin": "macos", "win32": "windows"}


def _os_version() -> str:
    # os_info (which codex uses) reports semantic versions: Debian's VERSION_ID "12" is
    # "12.0.0" in codex's user agent.
    try:
        version = platform.freedesktop_os_release().get("VERSION_ID", "")
    except OSError:
        version = platform.release() if sys.platform != "linux" else ""
    if not version:
        return "Unknown"
    parts = version.split(".")
    if all(part.isdigit() for part in parts) and len(parts) < 3:
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


@functools.cache
def host_runtime() -> RuntimeInfo:
    return RuntimeInfo(
        codex_rs_version="unknown",
        runtime_os=_OS_NAMES.get(sys.platform, sys.platform),
        runtime_os_version=_os_version(),
        runtime_arch=normalise_arch(platform.machine() or "unknown"),
    )
