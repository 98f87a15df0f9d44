"""The config tree's groups and options with their one-line descriptions: ``adaptrun
--help`` prints them and scripts/config_table.py writes them into docs/configuration.md.

Read from conf/ as files (the yaml's first comment line), without composing anything:
Hydra's own help composes the config and deep-copies its config repository once per
group, several times slower than the rest of the command.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import yaml


def config_dir() -> Path:
    """The config tree: inside an installed wheel, else the repository's top-level conf/."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    return packaged if packaged.is_dir() else package.parent / "conf"


class Option(NamedTuple):
    group: str
    name: str
    default: bool
    description: str


def describe(path: Path) -> str:
    """The option file's first comment line (past Hydra's ``# @package`` directive)."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("# @package")]
    first = lines[0] if lines else ""
    return first.lstrip("# ").strip() if first.startswith("#") else ""


def options(conf: Path) -> list[Option]:
    """Every option of every group that has options, the defaults marked."""
    root = yaml.safe_load((conf / "config.yaml").read_text())
    chosen = {k: v for item in root["defaults"] if isinstance(item, dict) for k, v in item.items()}
    return [
        Option(group.name, path.stem, chosen.get(group.name) == path.stem, describe(path))
        for group in sorted(p for p in conf.iterdir() if p.is_dir())
        for path in sorted(group.glob("*.yaml"))
    ]


def help_text(conf: Path) -> str:
    """``adaptrun --help``: the usage, every option with what it is, where to look next."""
    help_cfg = yaml.safe_load((conf / "config.yaml").read_text())["hydra"]["help"]
    lines = [help_cfg["header"].rstrip(), "", "Options (group=option; * marks the default):"]
    group = None
    for option in options(conf):
        if option.group != group:
            group = option.group
            lines.append(f"  {group}")
        mark = "*" if option.default else " "
        lines.append(f"   {mark} {option.name:<22} {option.description}")
    lines += ["", "See any composed config: adaptrun --cfg job [group=option ...]"]
    return "\n".join([*lines, help_cfg["footer"].rstrip()]) + "\n"


def group_help(conf: Path, group: str) -> str | None:
    """``adaptrun --help GROUP``: the group's options with what each is, then the keys
    each option's file sets (its typed schema may add more: ``adaptrun --cfg job
    GROUP=OPTION`` prints everything composed). None if there is no such group."""
    found = [o for o in options(conf) if o.group == group]
    if not found:
        return None
    lines = [f"{group} options ({group}=OPTION; * marks the default):"]
    lines += [f"  {'*' if o.default else ' '} {o.name:<22} {o.description}" for o in found]
    lines += ["", f"Keys each option sets (override as {group}.KEY=VALUE):"]
    for option in found:
        data = yaml.safe_load((conf / group / f"{option.name}.yaml").read_text()) or {}
        keys = {k: v for k, v in data.items() if k != "defaults"} if isinstance(data, dict) else {}
        shown = ", ".join(f"{k}={_short(v)}" for k, v in keys.items()) or "(none of its own)"
        lines.append(f"  {option.name}: {shown}")
    lines += ["", f"Everything an option composes to: adaptrun --cfg job {group}=OPTION"]
    return "\n".join(lines) + "\n"


def _short(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("\n...").strip()
    return text if len(text) <= 60 else text[:57] + "..."


def groups(conf: Path) -> list[str]:
    return sorted({o.group for o in options(conf)})
