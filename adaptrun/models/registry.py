"""The model registry: every model module registers an entry with its typed config, its
checks (may it take this dataset's inputs?), its capabilities and its builder."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from adaptrun.core.errors import is_number, require
from adaptrun.core.registry import Registry

ActFactory = Callable[[Sequence[int]], nn.Module]
INITS = ("default", "glorot_normal", "normal")


@dataclasses.dataclass
class ModelConfig:
    """The keys every model option has."""

    name: str = ""  # the registry entry that builds it
    init: str = "default"  # default | glorot_normal | normal (N(0, init_std^2))
    init_std: float = 0.1


@dataclasses.dataclass(frozen=True)
class ModelCapabilities:
    """images: needs (channels, height, width) inputs. stackable: trainer.stack can train
    several seeds of it as one vmapped model exactly (no BatchNorm statistics, no dropout).
    molf: optimizer=molf can train it (one hidden layer with bypass weights).
    forward_derivatives: it carries input derivatives forward (``taylor``), exactly, when
    its activations have closed-form second derivatives. width: the key of its config
    that sizes it (units per hidden layer), for bench.match=params."""

    images: bool = True
    stackable: bool = False
    molf: bool = False
    forward_derivatives: bool = False
    width: str | None = None  # the model.<key> that sizes it (bench.match=params sets it)


def _no_check(cfg: Mapping[str, Any], shape: Sequence[int], dataset: str) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    name: str
    config: type
    build: Callable[[Mapping[str, Any], Sequence[int], int, ActFactory], nn.Module]
    check: Callable[[Mapping[str, Any], Sequence[int], str], None] = _no_check
    capabilities: ModelCapabilities | Callable[[Mapping[str, Any]], ModelCapabilities] = (
        ModelCapabilities()
    )
    doc: str = ""

    def capabilities_of(self, cfg: Mapping[str, Any]) -> ModelCapabilities:
        caps = self.capabilities
        return caps(cfg) if callable(caps) else caps


MODELS: Registry[ModelEntry] = Registry("model", "model.name")


def fits(ok: bool, model: str, size: int, shape: Sequence[int], dataset: str) -> None:
    """Refuse a dataset whose images are smaller than the model can take."""
    require(
        ok,
        "model",
        f"model {model} cannot take dataset {dataset}: it needs images of at least "
        f"{size}x{size} and {dataset} has {shape[1]}x{shape[2]}",
    )


def check_common(cfg: Mapping[str, Any]) -> None:
    require(
        cfg.get("init", "default") in INITS,
        "model.init",
        f"unknown init {cfg.get('init')!r}; valid: {', '.join(INITS)}",
    )
    std = cfg.get("init_std", 0.1)
    require(is_number(std) and std > 0, "model.init_std", f"must be > 0 (got {std!r})")
