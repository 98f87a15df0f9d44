"""Typed schemas of the root config and of the groups that have no registry entry of
their own (trainer, optimizer, protocol, augmentation), and the check that every key of a
composed config is one of them.

Hydra adds a ``+key=value`` even where a structured schema is closed, and an option's yaml
may carry keys its schema lacks; so every section is compared with its schema here, at
check time: an unknown key is one line naming it and the nearest valid ones, a value of
the wrong container type one line naming its key. Scalars keep the entries' own range
checks (they say what would work).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import OmegaConf

from adaptrun.core.errors import ConfigError, nearest

CONTAINERS: dict[Any, tuple[type, ...]] = {list: (Sequence,), dict: (Mapping,)}


@dataclasses.dataclass
class TrainerConfig:
    epochs: Any = 20
    max_steps: Any = None
    batch_size: Any = 64
    eval_every: Any = None
    eval_every_epochs: Any = 1
    log_every: Any = 10
    lbfgs_steps: Any = 0
    figures_at: list[Any] = dataclasses.field(default_factory=list)
    device: Any = "auto"
    precision: Any = "auto"
    channels_last: Any = "auto"
    compile: Any = "auto"
    stack: Any = 1
    threads: Any = "auto"
    checkpoint_every: Any = None
    checkpoint_every_epochs: Any = 1
    test: Any = True
    figures: Any = True


@dataclasses.dataclass
class SlopeDefaults:
    base: Any = "relu"
    n: Any = 1


@dataclasses.dataclass
class ReferenceConfig:
    """A preset's published values (the report shows them beside ours)."""

    source: Any = ""
    metric: Any = ""
    rows: Any = ""
    columns: Any = ""
    values: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class BenchConfig:
    """How a comparison is made fair. ``match``: null, or ``params`` (the model's width
    set so its trainable parameters do not exceed the fixed network's: the same model
    without the activation's parameters)."""

    match: Any = None


@dataclasses.dataclass
class RootConfig:
    """The top level: the groups, and the keys of conf/config.yaml."""

    seed: Any = 0
    slope_defaults: SlopeDefaults = dataclasses.field(default_factory=SlopeDefaults)
    data_root: Any = ""
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    targets: dict[str, Any] = dataclasses.field(default_factory=dict)  # check_targets
    task: dict[str, Any] = dataclasses.field(default_factory=dict)
    model: dict[str, Any] = dataclasses.field(default_factory=dict)
    dataset: dict[str, Any] = dataclasses.field(default_factory=dict)
    activation: dict[str, Any] = dataclasses.field(default_factory=dict)
    augmentation: dict[str, Any] = dataclasses.field(default_factory=dict)
    optimizer: dict[str, Any] = dataclasses.field(default_factory=dict)
    protocol: dict[str, Any] = dataclasses.field(default_factory=dict)
    reference: ReferenceConfig | None = None
    bench: BenchConfig = dataclasses.field(default_factory=BenchConfig)
    adaptrun_stack: list[Any] | None = None  # the stacking sweeper's plan (adaptrun.config.plan)


def unknown_key(key: str, name: str, valid: list[str], what: str) -> ConfigError:
    """``key.name`` is not a setting: the error names the nearest valid ones."""
    full = f"{key}.{name}" if key else name
    hint = nearest(name, valid, f"{key}." if key else "", n=3)
    return ConfigError(full, f"not a setting of {what}; {hint}valid: {', '.join(valid)}")


@functools.cache
def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def check_section(key: str, values: Any, schema: type, what: str) -> None:
    """``values`` (a composed section) has only ``schema``'s keys, and a container where
    the schema has one. (Scalars were typed by the option's structured config when Hydra
    composed it, and the entries' checks say which values work.)"""
    if not isinstance(values, Mapping):
        raise ConfigError(key or "config", f"must be a mapping of {what} settings (got {values!r})")
    hints = _hints(schema)
    for name, value in values.items():
        if name not in hints:
            raise unknown_key(key, str(name), list(hints), what)
        kind = typing.get_origin(hints[name]) or hints[name]
        if kind in CONTAINERS and value is not None and not isinstance(value, CONTAINERS[kind]):
            shape = "list, e.g. [1, 2]" if kind is list else "mapping, e.g. {a: 1}"
            full = f"{key}.{name}" if key else str(name)
            raise ConfigError(full, f"must be a {shape} (got {value!r})")


def check_root(cfg: Mapping[str, Any]) -> None:
    """The top-level keys and the sections without an entry of their own."""
    check_section("", {k: v for k, v in cfg.items() if k != "hydra"}, RootConfig, "the root config")
    check_section("trainer", cfg["trainer"], TrainerConfig, "the trainer")
    check_section("slope_defaults", cfg["slope_defaults"], SlopeDefaults, "slope_defaults")
    if cfg.get("reference") is not None:
        check_section("reference", cfg["reference"], ReferenceConfig, "a preset's reference")
    for name in ("task", "model", "dataset", "activation", "augmentation", "optimizer"):
        if not isinstance(cfg[name].get("name") if isinstance(cfg[name], Mapping) else None, str):
            raise ConfigError(f"{name}.name", f"must name a {name} option (got {cfg[name]!r})")


def plain(section: Any, resolve: bool = True) -> dict[str, Any]:
    """A config mapping as plain dicts and lists (OmegaConf's converter is typed for any
    node; every caller here holds a mapping)."""
    value = OmegaConf.to_container(section, resolve=resolve)
    if not isinstance(value, dict):
        raise TypeError(f"expected a config mapping, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}
