"""The zoo's modules import each other only downwards (DESIGN.md's layer order) and never in a circle,
counting imports hidden inside functions; only zoo/ui.py imports streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "zoo"

# Lowest first. A module may import modules of its own layer or below, never above.
LAYERS = (
    ("zoo", "zoo.vocabulary", "zoo.errors", "zoo.paths", "zoo.hosting"),
    ("zoo.data", "zoo.models", "zoo.augment", "zoo.backend", "zoo.digits"),
    ("zoo.training", "zoo.runs", "zoo.store"),
    (
        "zoo.jobs",
        "zoo.charts",
        "zoo.charts.draw",
        "zoo.charts.learn",
        "zoo.charts.training",
        "zoo.evaluation",
        "zoo.hub",
        "zoo.inference",
        "zoo.formulas",
        "zoo.printed",
        "zoo.health",
        "zoo.overview",
    ),
    ("zoo.ui", "zoo.cli"),
    ("zoo.__main__", "zoo.container"),
)
LAYER_OF = {module: index for index, layer in enumerate(LAYERS) for module in layer}


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
    unplaced = sorted(set(zoo_imports()) - set(LAYER_OF))
    assert unplaced == [], f"add {unplaced} to LAYERS in tests/test_layers.py, where DESIGN.md puts them"


@pytest.mark.parametrize("module", sorted(LAYER_OF))
def test_no_module_imports_a_module_above_it(module):
    imports = zoo_imports().get(module, set())
    upward = sorted(imported for imported in imports if LAYER_OF.get(imported, -1) > LAYER_OF[module])
    assert upward == [], f"{module} (layer {LAYER_OF[module]}) imports {upward} from a layer above it"


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
    assert importers == ["zoo.ui"]
