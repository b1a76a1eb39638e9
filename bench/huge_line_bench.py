"""One huge line through ``codex-rpc-analytics proxy``: the proxy's peak RSS (issue 10 item 14).

A child writes one JSON line of 200 MiB (a string member, then a thread/resume-like result of
many small turns) in 64 KiB writes and exits; the bench reads everything the proxy relays and
reports the proxy's peak resident set (``ru_maxrss`` of the waited-for descendants: the proxy,
its child streams and stays small), as a range over three runs: how far analysis falls behind
the relay depends on scheduling. Past the analyzer's 4 MiB line limit the line is skimmed, not
assembled (core/skim.py); what remains is the backlog of chunks waiting for analysis, bounded
by ``--max-backlog-mib``, hence a second figure with ``--max-backlog-mib 16``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

SIZE_MIB = 200

WRITER = r"""
import sys
size, kind = int(sys.argv[1]) << 20, sys.argv[2]
out = sys.stdout.buffer
if kind == "string":
    out.write(b'{"id":1,"result":{"data":"')
    block = b"A" * 65536
    for _ in range(size // len(block)):
        out.write(block)
    out.write(b'"}}\n')
else:
    out.write(b'{"id":1,"result":{"thread":{"id":"thr-1","preview":"hi","turns":[')
    turn = b'{"id":"turn-x","items":[{"type":"agentMessage","text":"' + b"y" * 200 + b'"}]},'
    block = turn * 256
    for _ in range(size // len(block)):
        out.write(block)
    out.write(b'{"id":"last","items":[]}]},"model":"gpt-5"}}\n')
out.flush()
"""


def _peak_rss_mib(kind: str, size_mib: int, *flags: str) -> tuple[float, int]:  # MiB, bytes
    """Run one proxy in a fresh interpreter so that ru_maxrss covers that proxy alone."""
    with tempfile.TemporaryDirectory(prefix="huge-line-bench-") as tmp:
        probe = (
            "import resource, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL,"
            " stdout=subprocess.PIPE)\n"
            "n = 0\n"
            "while chunk := p.stdout.read(1 << 20):\n"
            "    n += len(chunk)\n"
            "p.wait()\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, n, p.returncode)\n"
        )
        command = [sys.executable, "-m", "codex_rpc_analytics", "proxy", "--state-dir",
                   str(Path(tmp) / "state"), *flags, "--", sys.executable, "-c", WRITER,
                   str(size_mib), kind]
        result = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True,
                                text=True, check=True, timeout=600)
        maxrss_kib, relayed, status = (int(x) for x in result.stdout.split())
        # The writer writes whole blocks (up to ~70 KB each): the line is that much short.
        assert status == 0 and relayed >= (size_mib << 20) - (1 << 17)
        return maxrss_kib / 1024, relayed


# Tiny sizes for `bench/run.py --smoke`: the bench runs, its figures mean nothing.
SMOKE = {"trials": 1, "size_mib": 2}


def run(trials: int = 3, size_mib: int = SIZE_MIB) -> None:
    for kind in ("string", "items"):
        for flags in ((), ("--max-backlog-mib", "16")):
            peaks = sorted(_peak_rss_mib(kind, size_mib, *flags)[0] for _ in range(trials))
            label = " ".join(flags) or "default backlog"
            print(f"   one {size_mib} MiB line ({kind}), {label}: proxy peak RSS "
                  f"{peaks[0]:.0f}-{peaks[-1]:.0f} MiB ({peaks[0] / size_mib:.2f}-"
                  f"{peaks[-1] / size_mib:.2f}x the line, {trials} runs)", flush=True)
