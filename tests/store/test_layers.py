"""The team wing's layering: the collector imports the store; the store imports only delivery
(to read an outbox); nothing in core/, delivery/ or adapters/ imports either of them."""

from __future__ import annotations

import ast
from pathlib import Path

import codex_rpc_analytics

PACKAGE = Path(codex_rpc_analytics.__file__).parent

# Folder -> the package's own folders it must never import.
FORBIDDEN = {
    "core": {"store", "collector", "delivery", "adapters", "cli"},
    "delivery": {"store", "collector", "core", "adapters", "cli"},
    "adapters": {"store", "collector", "cli"},
    "store": {"collector", "core", "adapters", "cli"},
    "collector": {"adapters", "cli"},
}


def imported_folders(path: Path, folder: str) -> set[str]:
    """The top-level folders of codex_rpc_analytics that one module imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level >= 2 and node.module:  # from ..store import x
                found.add(node.module.split(".")[0])
            elif node.level >= 2:  # from .. import store
                found.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith(
                    "codex_rpc_analytics."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("codex_rpc_analytics."))
    found.discard(folder)
    return found


def test_no_layer_imports_a_layer_it_must_not() -> None:
    violations = []
    for folder, forbidden in FORBIDDEN.items():
        for module in sorted((PACKAGE / folder).rglob("*.py")):
            bad = imported_folders(module, folder) & forbidden
            if bad:
                violations.append(f"{module.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert violations == []
