"""Print the README's package layout, generated from the packages' own docstrings.

python scripts/layout.py            # print it
python scripts/layout.py --check    # exit 1 if README.md's copy is stale
python scripts/layout.py --write    # rewrite README.md's copy
"""

from __future__ import annotations

import ast

from config_table import REPO, main

BEGIN, END = "<!-- layout:begin -->", "<!-- layout:end -->"
# lowest layer first, as tests/test_layers.py orders them
ORDER = [
    "core", "activations", "models", "data", "tasks", "records", "training",
    "config", "runner", "sweep", "report", "cli", "tools",
]  # fmt: skip


def summary(path: str) -> str:
    """The docstring's first sentence, on one line."""
    doc = ast.get_docstring(ast.parse((REPO / path).read_text())) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    return first.split(". ")[0].rstrip(".")


def layout() -> str:
    lines = ["```", "adaptrun/         (lowest layer first: each may import only those above it)"]
    for package in ORDER:
        lines.append(f"  {package + '/':<15} {summary(f'adaptrun/{package}/__init__.py')}")
    lines += ["hydra_plugins/    the stacked sweeper (Hydra finds sweepers in this package)"]
    lines += ["conf/             the Hydra config tree (shipped inside the wheel)"]
    lines += ["docs/             the manual; scripts/ benchmarks and generators; tests/", "```"]
    return "\n".join(lines)


if __name__ == "__main__":
    main(layout(), "layout", "README.md", BEGIN, END)
