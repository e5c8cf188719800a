"""The zoo's packages import each other only downwards (ARCHITECTURE.md's layers) and no two modules
import each other, even through others, counting imports hidden inside functions; only zoo/app/ui.py
imports streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "zoo"

# The packages, lowest first. A module may import modules of its own layer or below, never above.
LAYERS = (
    ("zoo", "zoo.core"),
    ("zoo.storage",),
    ("zoo.ml",),
    ("zoo.runs",),
    ("zoo.execution", "zoo.hub"),
    ("zoo.app",),
    ("zoo.__main__",),
)
PACKAGE_LAYER = {package: index for index, layer in enumerate(LAYERS) for package in layer}


def layer_of(module: str) -> int | None:
    """The layer of the package that holds ``module`` (the longest listed prefix), or None."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        package = ".".join(parts[:length])
        if package in PACKAGE_LAYER and (package != "zoo" or module == "zoo"):
            return PACKAGE_LAYER[package]
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (``from zoo import x`` counts as
    ``zoo.x`` when x is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def zoo_imports() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {imported for imported in imported_modules(path) if imported in modules}
        for name, path in modules.items()
    }


def test_every_module_has_a_layer():
    unplaced = sorted(module for module in zoo_imports() if layer_of(module) is None)
    assert unplaced == [], f"put {unplaced} in a package of LAYERS (tests/test_layers.py, ARCHITECTURE.md)"


@pytest.mark.parametrize("module", sorted(zoo_imports()))
def test_no_module_imports_a_module_above_it(module):
    imports = zoo_imports()[module]
    upward = sorted(imported for imported in imports if (layer_of(imported) or 0) > (layer_of(module) or 0))
    assert upward == [], f"{module} (layer {layer_of(module)}) imports {upward} from a layer above it"


def test_no_two_modules_import_each_other_even_through_others():
    graph = zoo_imports()
    for start in graph:
        reached, frontier = set(), [start]
        while frontier:
            for imported in graph[frontier.pop()]:
                if imported == start and imported != "zoo":
                    pytest.fail(f"{start} imports itself through its imports")
                if imported not in reached:
                    reached.add(imported)
                    frontier.append(imported)


def test_only_the_ui_module_imports_streamlit():
    importers = sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if any(name.split(".")[0] == "streamlit" for name in imported_modules(path))
    )
    assert importers == ["zoo.app.ui"]
