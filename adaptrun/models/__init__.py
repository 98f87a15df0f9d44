"""Model names to builders; every model takes its input shape, class count and activations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from adaptrun.errors import require
from adaptrun.models.init import INITS, initialize
from adaptrun.models.mlp import MLP
from adaptrun.models.vgg import VGG

ActFactory = Callable[[Sequence[int]], nn.Module]


def _mlp(cfg: Mapping[str, Any], shape: Sequence[int], classes: int, act: ActFactory) -> nn.Module:
    return MLP(shape, [int(cfg["width"])] * int(cfg["hidden_layers"]), classes, act)


def _vgg(cfg: Mapping[str, Any], shape: Sequence[int], classes: int, act: ActFactory) -> nn.Module:
    filters = list(cfg["filters"])[: int(cfg["blocks"])]
    return VGG(shape, filters, int(cfg["dense"]), classes, act)


BUILDERS: dict[str, Callable[..., nn.Module]] = {"mlp": _mlp, "vgg": _vgg}


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_model(cfg: Mapping[str, Any], shape: Sequence[int], dataset: str) -> None:
    """Config-only checks, including whether the model can take the dataset's images."""
    name = cfg["name"]
    require(name in BUILDERS, "model.name", f"unknown model {name!r}; valid: {', '.join(BUILDERS)}")
    require(
        cfg.get("init", "default") in INITS,
        "model.init",
        f"unknown init {cfg.get('init')!r}; valid: {', '.join(INITS)}",
    )
    if name == "mlp":
        require(_positive(cfg["hidden_layers"]), "model.hidden_layers", "must be an integer >= 1")
        require(_positive(cfg["width"]), "model.width", "must be an integer >= 1")
    elif name == "vgg":
        filters = list(cfg["filters"])
        blocks = cfg["blocks"]
        require(
            _positive(blocks) and blocks <= len(filters),
            "model.blocks",
            f"must be between 1 and {len(filters)} (the length of model.filters)",
        )
        require(all(_positive(f) for f in filters), "model.filters", "must be positive integers")
        require(_positive(cfg["dense"]), "model.dense", "must be an integer >= 1")
        smallest = min(shape[1], shape[2])
        require(
            smallest >= 2**blocks,
            "model",
            f"vgg with {blocks} blocks halves the image {blocks} times and needs at least "
            f"{2**blocks}x{2**blocks} inputs; dataset {dataset} has {shape[1]}x{shape[2]}",
        )


def build_model(
    cfg: Mapping[str, Any], shape: Sequence[int], num_classes: int, act: ActFactory
) -> nn.Module:
    """A freshly initialised model for images of ``shape`` (C, H, W)."""
    model = BUILDERS[cfg["name"]](cfg, shape, num_classes, act)
    initialize(model, cfg.get("init", "default"))
    return model


__all__ = ["BUILDERS", "MLP", "VGG", "build_model", "check_model"]
