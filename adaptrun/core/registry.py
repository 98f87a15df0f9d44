"""Named extension points: one registry per concern (activation families, models, tasks,
datasets).

An entry sits next to the code it describes and declares what the runner needs to know
about it: its typed config (a dataclass, registered with Hydra's ConfigStore as
``schema/<concern>/<name>`` so a config file extends it and OmegaConf rejects a wrongly
typed value at compose time), its own range checks, its capabilities and its builder.
The runner looks entries up by the name a config gives and then asks them; it never
compares names itself.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from hydra.core.config_store import ConfigStore

from adaptrun.core.errors import ConfigError


class Entry(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def config(self) -> type | None:  # the structured-config dataclass; None: free keys
        ...


E = TypeVar("E", bound=Entry)


class Registry(Generic[E]):
    """Entries of one concern by name; the config key that selects them names errors."""

    def __init__(self, concern: str, key: str) -> None:
        self.concern = concern  # "activation", "model", ... : the config group
        self.key = key  # the config key naming an entry, e.g. "activation.family"
        self._entries: dict[str, E] = {}

    def register(self, entry: E) -> E:
        if entry.name in self._entries:
            raise ValueError(f"{self.concern} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        if entry.config is not None:
            group = f"schema/{self.concern}"
            ConfigStore.instance().store(group=group, name=entry.name, node=entry.config)
        return entry

    def __getitem__(self, name: str) -> E:
        if name not in self._entries:
            raise ConfigError(
                self.key, f"unknown {self.concern} {name!r}; valid: {', '.join(self._entries)}"
            )
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def values(self) -> list[E]:
        return list(self._entries.values())


def load_plugins() -> None:
    """Import every registry's package, so all entries (and their typed schemas in Hydra's
    ConfigStore) exist before a config is composed for a run."""
    for package in ("adaptrun.activations", "adaptrun.models", "adaptrun.tasks", "adaptrun.data"):
        importlib.import_module(package)


def discover(package: str) -> None:
    """Import every public module of ``package`` so that the entries they register exist
    (a new entry is a new module: nothing else needs editing). Modules whose name starts
    with ``_`` are skipped (kernels and other code that may not import everywhere)."""
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
