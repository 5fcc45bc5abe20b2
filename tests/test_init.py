"""The public API: every exported name resolves, lazily; the layers import only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

import lstm_stateful

PACKAGE = Path(lstm_stateful.__file__).parent
# Each layer, bottom up; a module may import from its own layer and those below it.
LAYERS = ["core", "io", "engine", "models", "export", "serve", "sweep", "render", "commands", "cli"]


def test_every_export_resolves() -> None:
    for name in lstm_stateful.__all__:
        assert getattr(lstm_stateful, name) is not None, name
    assert lstm_stateful.run_command.__module__ == "lstm_stateful.commands.run"


def _layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else -1


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lstm_stateful"):
            top = node.module == "lstm_stateful"
            names += [f"lstm_stateful.{a.name}" for a in node.names] if top else [node.module]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("lstm_stateful")]
    return names


def test_nothing_low_imports_anything_high() -> None:
    checked = 0
    for path in PACKAGE.rglob("*.py"):
        module = "lstm_stateful." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        if _layer(module) < 0:
            continue  # the package's own __init__ re-exports everything, lazily
        for imported in _imports(path):
            assert _layer(imported) <= _layer(module), f"{module} imports {imported}, a layer above it"
            checked += 1
    assert checked > 50  # the walk found the package's imports
