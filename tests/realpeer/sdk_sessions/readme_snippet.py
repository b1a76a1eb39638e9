"""A README snippet that uses an SDK, run as written in the SDK venv (`test_readme_sdk.py`).

The snippet is the user's program: it starts its command itself (`codex-rpc-analytics proxy --
codex app-server`, both found on PATH, which the spec's environment sets). This wrapper only
runs it and records what it printed and whether it raised.
"""

from __future__ import annotations

import contextlib
import io
import runpy
import sys

from _common import load_spec, new_result, record_error, write_result


def main() -> int:
    spec = load_spec()
    result = new_result("readme-snippet")
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            runpy.run_path(spec["options"]["snippet"], run_name="__main__")
    except BaseException as exc:
        record_error(result, exc)
    result["printed"] = printed.getvalue()
    write_result(spec, result)
    return 0 if result["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main())
