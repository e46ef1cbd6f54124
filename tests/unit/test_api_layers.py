"""The API's layers: nothing below ``routes/`` imports the HTTP layer (DESIGN section 2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[2] / "api-service" / "src" / "snapshot_api"
BELOW_HTTP = ("db", "messaging", "services")
HTTP_LAYER = (
    "fastapi",
    "starlette",
    "snapshot_api.routes",
    "snapshot_api.problems",
    "snapshot_api.deps",
    "snapshot_api.middleware",
    "snapshot_api.responses",
)


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_http(name: str) -> bool:
    return any(name == layer or name.startswith(layer + ".") for layer in HTTP_LAYER)


@pytest.mark.parametrize("layer", BELOW_HTTP)
def test_layer_imports_nothing_from_http(layer: str) -> None:
    modules = sorted((PACKAGE / layer).rglob("*.py"))
    assert modules, f"no modules found under {layer}/"
    offending = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imported(path) if _is_http(n))
        for path in modules
    }
    assert {path: names for path, names in offending.items() if names} == {}
