"""Print the README's table of config groups and options, generated from conf/.

python scripts/config_table.py            # print the table
python scripts/config_table.py --check    # exit 1 if README.md's copy is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from adaptrun.config.options import options

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


def readme_block(readme: str, begin: str = BEGIN, end: str = END) -> str:
    start, stop = readme.index(begin) + len(begin), readme.index(end)
    return readme[start:stop].strip()


def write_readme(text: str, begin: str = BEGIN, end: str = END) -> None:
    path = REPO / "README.md"
    readme = path.read_text()
    start, stop = readme.index(begin) + len(begin), readme.index(end)
    path.write_text(f"{readme[:start]}\n{text}\n{readme[stop:]}")


def main(text: str, what: str, begin: str = BEGIN, end: str = END) -> None:
    """``--write`` puts ``text`` into README.md, ``--check`` exits 1 if its copy is stale."""
    if "--write" in sys.argv:
        write_readme(text, begin, end)
    elif "--check" in sys.argv:
        stale = readme_block((REPO / "README.md").read_text(), begin, end) != text
        script = Path(sys.argv[0]).name
        print(f"README.md {what} is stale: run scripts/{script} --write" if stale else "ok")
        sys.exit(1 if stale else 0)
    else:
        print(text)


if __name__ == "__main__":
    main(table(), "config table")
