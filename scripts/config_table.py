"""Print the README's table of config groups and options, generated from conf/.

python scripts/config_table.py            # print the table
python scripts/config_table.py --check    # exit 1 if README.md's copy is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
BEGIN, END = "<!-- config-table:begin -->", "<!-- config-table:end -->"


def defaults() -> dict[str, str]:
    root = yaml.safe_load((CONF / "config.yaml").read_text())
    return {k: v for item in root["defaults"] if isinstance(item, dict) for k, v in item.items()}


def describe(path: Path) -> str:
    """The option file's first comment line (past Hydra's ``# @package`` directive)."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("# @package")]
    first = lines[0] if lines else ""
    return first.lstrip("# ").strip().replace("|", "\\|") if first.startswith("#") else ""


def table() -> str:
    rows = ["| group | option | default | what it is |", "|---|---|---|---|"]
    chosen = defaults()
    for group in sorted(p for p in CONF.iterdir() if p.is_dir()):
        for option in sorted(group.glob("*.yaml")):
            mark = "yes" if chosen.get(group.name) == option.stem else ""
            rows.append(f"| `{group.name}` | `{option.stem}` | {mark} | {describe(option)} |")
    return "\n".join(rows)


def readme_table(readme: str) -> str:
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[start:end].strip()


def write_readme() -> None:
    path = REPO / "README.md"
    readme = path.read_text()
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    path.write_text(f"{readme[:start]}\n{table()}\n{readme[end:]}")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_readme()
        sys.exit(0)
    if "--check" in sys.argv:
        stale = readme_table((REPO / "README.md").read_text()) != table()
        print("README.md config table is stale: run scripts/config_table.py" if stale else "ok")
        sys.exit(1 if stale else 0)
    print(table())
