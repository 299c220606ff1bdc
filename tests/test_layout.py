"""The engine's rooms and their one import direction: services -> core -> rules -> store.

Read from the source with `ast`, so a module that imports a room it may not (at any
depth, even inside a function) fails here, and so does any `flask` import under `engine/`,
any SpiffWorkflow import outside the workflow core, and any `api` import under `handlers/`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["store", "rules", "core", "services"]  # each room may import only those before it
SHARED = {"errors", "clock", "runtime"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _modules(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def _room(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "engine" and parts[1] in ORDER else None


@pytest.mark.parametrize("path", _modules("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_imports_point_one_way(path):
    rel = path.relative_to(ROOT / "engine").parts
    own = rel[0] if len(rel) > 1 else None
    imported = _imports(path)
    assert not any(n == "flask" or n.startswith("flask.") or n.startswith("flask_") for n in imported), \
        f"{path.name} imports Flask"
    if own is None:
        return  # errors, clock, runtime: shared by every room
    allowed = set(ORDER[:ORDER.index(own) + 1])
    wrong = sorted(n for n in imported if _room(n) and _room(n) not in allowed)
    assert not wrong, f"engine/{own} may import only {sorted(allowed)}: {wrong}"
    if own != "core":
        spiff = sorted(n for n in imported if n.startswith("SpiffWorkflow"))
        assert not spiff, f"only engine/core knows SpiffWorkflow: {spiff}"
    if own == "store":
        siblings = sorted(n for n in imported if n.startswith("engine.store.") and n.split(".")[2] not in
                          ("base", "db") and path.name != "__init__.py" and path.stem not in ("ledger", "case_facts"))
        assert not siblings, f"store tables import only engine.store.base: {siblings}"


def test_nothing_above_the_engine_knows_spiffworkflow():
    for folder in ("api", "handlers", "timers", "cli"):
        for path in _modules(folder):
            spiff = sorted(n for n in _imports(path) if n.startswith("SpiffWorkflow"))
            assert not spiff, f"{path.relative_to(ROOT)} imports {spiff}"


def test_handlers_never_import_the_http_layer():
    for path in _modules("handlers"):
        assert not any(n == "api" or n.startswith("api.") for n in _imports(path)), path


def test_every_engine_module_says_what_it_holds():
    for path in _modules("engine"):
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path.relative_to(ROOT)} has no module docstring"
