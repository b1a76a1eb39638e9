"""The package's layering, as the README's layout and docs/architecture.md draw it.

Each folder of ``codex_rpc_analytics`` imports only the folders below it: ``core/`` (sans-I/O)
and ``delivery/`` at the bottom, ``adapters/`` above ``core/``, ``examples/`` above
``adapters/``; the team wing ``store/`` (which reads an outbox through ``delivery/``), then
``report/`` (which reads a store), then ``collector/`` (which serves the report); ``cli/`` on top
imports anything. And ``core/`` imports nothing but itself, msgspec and the parts of the
standard library that do no I/O and read no clock: no asyncio, sockets, threads, files,
subprocesses, time or logging, which is what lets it run identically live, in replay and in
tests, with every clock handed in.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import codex_rpc_analytics

PACKAGE = Path(codex_rpc_analytics.__file__).parent
NAME = PACKAGE.name
FOLDERS = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
TOP_MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__",
                                                                            "__main__"))

# Folder -> the parts of the package (folders and top-level modules) it may import.
ALLOWED = {
    "core": set(),
    "delivery": {"__init__"},  # the version, for the User-Agent
    "adapters": {"__init__", "core", "delivery", "host"},
    "examples": {"adapters"},
    "store": {"delivery"},
    "report": {"store"},
    "collector": {"delivery", "store", "report"},
}

# What core/ may import from outside itself: msgspec, and standard modules without I/O, clocks,
# threads or processes. A module not listed here fails the test: add it only if it is as pure.
CORE_STDLIB = {
    "__future__", "typing", "collections", "abc", "enum", "dataclasses", "functools",
    "itertools", "operator", "re", "struct", "math", "hashlib", "binascii", "base64",
    "string", "unicodedata", "codecs", "json", "bisect", "heapq", "types",
}
CORE_THIRD_PARTY = {"msgspec"}
# pathlib only for its pure paths: a lexical path operation, no file system.
CORE_NAMES_ONLY = {"pathlib": {"PurePath", "PurePosixPath", "PureWindowsPath"}}


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def imports_of(path: Path) -> list[tuple[str, list[str], int]]:
    """Every import of one module, relative ones resolved: (absolute module, names, line)."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if node.level == 0:
                found.append((node.module or "", names, node.lineno))
                continue
            base = list(package[:len(package) - node.level + 1])
            if node.module:
                found.append((".".join([*base, *node.module.split(".")]), names, node.lineno))
            else:  # from .. import store, __version__: each name a module, or the package's
                for name in names:
                    target = Path(*base[1:], name) if len(base) > 1 else Path(name)
                    is_module = ((PACKAGE / target).is_dir()
                                 or (PACKAGE / target).with_suffix(".py").is_file())
                    found.append((".".join([*base, name]) if is_module else ".".join(base),
                                  [name], node.lineno))
    return found


def package_part(module: str) -> str | None:
    """The folder or top-level module of the package that ``module`` is in; ``__init__`` for
    the package itself; None outside the package."""
    parts = module.split(".")
    if parts[0] != NAME:
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_folder_has_a_rule() -> None:
    assert set(FOLDERS) - {"cli"} == set(ALLOWED), "a new folder needs its place in ALLOWED"


def test_no_folder_imports_one_above_it() -> None:
    violations = []
    for folder, allowed in ALLOWED.items():
        for path in _modules(folder):
            for module, _, line in imports_of(path):
                part = package_part(module)
                if part is not None and part != folder and part not in allowed:
                    violations.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert violations == []


def test_core_imports_only_msgspec_and_the_pure_standard_library() -> None:
    violations = []
    for path in _modules("core"):
        for module, names, line in imports_of(path):
            top = module.split(".")[0]
            where = f"core/{path.relative_to(PACKAGE / 'core')}:{line} imports {module}"
            if top == NAME:
                if package_part(module) != "core":
                    violations.append(where)
            elif top in CORE_NAMES_ONLY:
                if not names or set(names) - CORE_NAMES_ONLY[top]:
                    violations.append(f"{where} ({', '.join(names) or 'the module'})")
            elif top not in CORE_STDLIB | CORE_THIRD_PARTY:
                kind = "standard module" if top in sys.stdlib_module_names else "library"
                violations.append(f"{where} (a {kind} core must not use)")
    assert violations == []


def test_the_checks_see_what_they_should() -> None:
    """Relative imports resolve from the module's own package, at any depth."""
    client = PACKAGE / "adapters" / "client" / "tracking.py"
    modules = {module for module, _, _ in imports_of(client)}
    assert any(m.startswith(f"{NAME}.core.") for m in modules), modules  # from ...core.x
    assert f"{NAME}.adapters.client.worker" in modules
    session = {module for module, _, _ in imports_of(PACKAGE / "adapters" / "session.py")}
    assert NAME in session  # from .. import __version__: the package, not a folder
    assert package_part(f"{NAME}.store.base") == "store" and package_part("asyncio") is None
    assert TOP_MODULES, "no top-level modules found"
