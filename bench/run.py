"""`make bench`: every performance figure the issues ask for, printed, in one run.

Sections run in order; each prints its own lines. Pass section names to run only some:
``python bench/run.py replay``.

``--smoke`` runs every section at the tiny sizes its module names in ``SMOKE`` (keyword
arguments of its ``run``): the figures mean nothing, but the suite runs it on a fresh clone
(tests/test_self_contained.py) to prove that the benches still run and read nothing outside
the repository. A new section names its ``SMOKE`` sizes too.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SECTIONS = ["replay_bench", "delivery_bench", "relay_bench", "paced_bench", "flood_bench",
            "huge_line_bench", "client_bench", "collect_bench", "report_bench"]


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        print("sections:", " ".join(name.removesuffix("_bench") for name in SECTIONS))
        return 0
    smoke = "--smoke" in argv
    wanted = [f"{name}_bench" for name in argv if name != "--smoke"] or SECTIONS
    unknown = [name for name in wanted if name not in SECTIONS]
    if unknown:
        print(f"bench: no section {unknown[0].removesuffix('_bench')!r}; sections: "
              + " ".join(name.removesuffix("_bench") for name in SECTIONS), file=sys.stderr)
        return 2
    for name in wanted:
        started = time.perf_counter()
        print(f"== {name.removesuffix('_bench')} ==", flush=True)
        section = importlib.import_module(name)
        if smoke and not hasattr(section, "SMOKE"):
            print(f"bench/{name}.py names no SMOKE sizes", file=sys.stderr)
            return 1
        section.run(**(section.SMOKE if smoke else {}))
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
