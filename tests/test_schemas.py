"""The committed JSON Schemas match the event structs (regenerate with `make schemas`)."""

from __future__ import annotations

from codex_rpc_analytics.schema import render_schemas
from tests.support import REPO


def test_committed_schemas_are_current() -> None:
    directory = REPO / "schemas"
    rendered = render_schemas()
    committed = {path.name: path.read_bytes() for path in directory.glob("*.json")}
    stale = sorted(name for name in rendered if committed.get(name) != rendered[name])
    extra = sorted(set(committed) - set(rendered))
    assert not stale and not extra, f"stale: {stale}, unknown: {extra}; run `make schemas`"
