"""Print the README's table of config groups and options, generated from conf/.

python scripts/config_table.py            # print the table
python scripts/config_table.py --check    # exit 1 if README.md's copy is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from adaptrun.options import options

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
BEGIN, END = "<!-- config-table:begin -->", "<!-- config-table:end -->"


def table() -> str:
    rows = ["| group | option | default | what it is |", "|---|---|---|---|"]
    for option in options(CONF):
        mark = "yes" if option.default else ""
        text = option.description.replace("|", "\\|")
        rows.append(f"| `{option.group}` | `{option.name}` | {mark} | {text} |")
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
