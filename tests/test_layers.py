"""The package layout keeps its layers: no module imports a layer above its own, and the
top level holds at most six modules."""

from __future__ import annotations

import ast
from pathlib import Path

import adaptrun

PACKAGE = Path(adaptrun.__file__).parent
# lowest first; a module may import its own layer and any below it
LAYERS = [
    "core",
    "activations",
    "models",
    "data",
    "tasks",
    "records",
    "training",
    "config",
    "runner",
    "sweep",
    "report",
    "cli",
    "tools",
]


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "adaptrun":
                found += [(node.lineno, f"adaptrun.{a.name}") for a in node.names]
            elif node.module.startswith("adaptrun."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("adaptrun.")]
    return found


def test_no_module_imports_a_layer_above_its_own():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) == 1:
            continue  # __init__ and __main__ (the entry point) sit above every layer
        own = relative.parts[0]
        assert own in LAYERS, f"adaptrun/{own} is in no layer of this test"
        for line, module in _imports(path):
            layer = _layer(module)
            assert layer in LAYERS, f"{relative}:{line} imports {module}, in no layer"
            if LAYERS.index(layer) > LAYERS.index(own):
                wrong.append(f"{relative}:{line} ({own}) imports {module} ({layer})")
    assert not wrong, "\n".join(wrong)


def test_the_top_level_holds_at_most_six_modules_and_every_package_a_summary():
    assert len(list(PACKAGE.glob("*.py"))) <= 6
    for layer in LAYERS:
        doc = ast.get_docstring(ast.parse((PACKAGE / layer / "__init__.py").read_text()))
        assert doc and "." in doc, f"adaptrun/{layer}: a docstring that says what it holds"


def test_test_modules_share_helpers_only_through_conftest():
    """Shared helpers live in tests/conftest.py (and the fixture writers beside it): a test
    module imported by another runs its module-level code twice and ties the two."""
    crossing = []
    for path in sorted((PACKAGE.parent / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            crossing += [
                f"{path.name}:{node.lineno} imports {n}" for n in names if n.startswith("test_")
            ]
    assert not crossing, "\n".join(crossing)
