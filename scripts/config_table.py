"""Print the configuration reference's table of config groups and options, from conf/.

python scripts/config_table.py            # print the table
python scripts/config_table.py --check    # exit 1 if docs/configuration.md's copy is stale
python scripts/config_table.py --write    # rewrite docs/configuration.md's copy
"""

from __future__ import annotations

import sys
from pathlib import Path

from adaptrun.config.options import options

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
BEGIN, END = "<!-- config-table:begin -->", "<!-- config-table:end -->"  # in docs/configuration.md


def table() -> str:
    rows = ["| group | option | default | what it is |", "|---|---|---|---|"]
    for option in options(CONF):
        mark = "yes" if option.default else ""
        text = option.description.replace("|", "\\|")
        rows.append(f"| `{option.group}` | `{option.name}` | {mark} | {text} |")
    return "\n".join(rows)


def block(text: str, begin: str, end: str) -> str:
    start, stop = text.index(begin) + len(begin), text.index(end)
    return text[start:stop].strip()


def main(text: str, what: str, doc: str, begin: str = BEGIN, end: str = END) -> None:
    """``--write`` puts ``text`` between the markers of ``doc`` (a path from the
    repository's root), ``--check`` exits 1 if its copy there is stale."""
    path = REPO / doc
    current = path.read_text()
    if "--write" in sys.argv:
        start, stop = current.index(begin) + len(begin), current.index(end)
        path.write_text(f"{current[:start]}\n{text}\n{current[stop:]}")
    elif "--check" in sys.argv:
        stale = block(current, begin, end) != text
        script = Path(sys.argv[0]).name
        print(f"{doc}: its {what} is stale: run scripts/{script} --write" if stale else "ok")
        sys.exit(1 if stale else 0)
    else:
        print(text)


if __name__ == "__main__":
    main(table(), "config table", "docs/configuration.md")
