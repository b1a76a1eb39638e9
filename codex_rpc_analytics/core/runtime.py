"""The analytics ``runtime`` object, parsed from the server's ``initialize`` result.

In the reference these are the server's own build version, OS, OS version and arch; its
``userAgent`` is built from the same data (docs/app-server-protocol.md §7.3), so parsing it
reproduces them:

    probe/0.169.0 (Debian 12.0.0; x86_64) xterm (probe; 0.0.1)
    -> codex_rs_version "0.169.0", runtime_os_version "12.0.0", runtime_arch "x86_64"

``runtime_os`` is ``platformOs`` verbatim. Where the server gave nothing usable, the host's
own values (passed in by the adapter; the core reads no machine state) fill the gap.
"""

from __future__ import annotations

import msgspec

# Rust std::env::consts::ARCH names for what os_info / uname may print.
_ARCH_ALIASES = {"arm64": "aarch64", "ARM64": "aarch64", "amd64": "x86_64", "AMD64": "x86_64",
                 "x64": "x86_64"}


class RuntimeInfo(msgspec.Struct, frozen=True):
    codex_rs_version: str
    runtime_os: str
    runtime_os_version: str
    runtime_arch: str


def normalise_arch(arch: str) -> str:
    return _ARCH_ALIASES.get(arch, arch)


def parse_runtime(
    user_agent: str | None, platform_os: str | None, host: RuntimeInfo
) -> tuple[RuntimeInfo, int]:
    """Return the runtime and how many of its four values fell back to the host's."""
    version = os_version = arch = None
    if user_agent:
        slash = user_agent.find("/")
        if slash >= 0:
            version = user_agent[slash + 1 :].split(" ", 1)[0] or None
        open_paren = user_agent.find("(")
        close_paren = user_agent.find(")", open_paren + 1)
        if 0 <= open_paren < close_paren:
            os_part, semicolon, arch_part = user_agent[open_paren + 1 : close_paren].partition(";")
            os_tokens = os_part.split()
            os_version = os_tokens[-1] if os_tokens else None
            arch = normalise_arch(arch_part.strip()) if semicolon and arch_part.strip() else None
    fallbacks = sum(not value for value in (version, platform_os, os_version, arch))
    runtime = RuntimeInfo(
        codex_rs_version=version if version is not None else host.codex_rs_version,
        runtime_os=platform_os if platform_os else host.runtime_os,
        runtime_os_version=os_version if os_version is not None else host.runtime_os_version,
        runtime_arch=arch if arch is not None else host.runtime_arch,
    )
    return runtime, fallbacks
