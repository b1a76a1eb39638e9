"""JSON Schema of every event type, generated from the msgspec structs.

``python -m codex_rpc_analytics.schema DIR`` (``make schemas``) writes one
``<event_type>.schema.json`` per event and ``events.schema.json`` for the union; a test
fails when the committed copies are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec

from .core.events import EVENT_TYPES, AnyEvent


def _tag(event_type: type[msgspec.Struct]) -> str:
    tag = event_type.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


def render_schemas() -> dict[str, bytes]:
    """File name -> content, deterministic (sorted keys, two-space indent, final newline)."""
    files = {
        f"{_tag(event_type)}.schema.json": msgspec.json.schema(event_type)
        for event_type in EVENT_TYPES
    }
    files["events.schema.json"] = msgspec.json.schema(AnyEvent)
    return {
        name: msgspec.json.format(msgspec.json.encode(schema, order="sorted"), indent=2) + b"\n"
        for name, schema in files.items()
    }


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render_schemas().items():
        path = directory / name
        path.write_bytes(content)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")
    for path in write_schemas(target):
        print(path)
