"""Models: the registry of network builders (MLPs, VGG, LeNet, ResNets, transfer models).

Every module of this package registers its entries in ``MODELS``; each builder takes the
model's config, the input shape, the class count and an activation factory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from adaptrun.core.errors import require
from adaptrun.core.registry import discover
from adaptrun.models.init import initialize
from adaptrun.models.lenet import LeNet
from adaptrun.models.mlp import MLP
from adaptrun.models.preact_resnet import PreActResNet18
from adaptrun.models.registry import MODELS, ActFactory, ModelCapabilities, check_common
from adaptrun.models.vgg import VGG

discover(__name__)


def check_model(cfg: Mapping[str, Any], shape: Sequence[int], dataset: str) -> ModelCapabilities:
    """Config-only checks, including whether the model can take the dataset's inputs;
    returns what the model can do with this config."""
    entry = MODELS[cfg["name"]]
    check_common(cfg)
    caps = entry.capabilities_of(cfg)
    if caps.images:
        require(
            len(shape) == 3,
            "model",
            f"model {entry.name} needs images; dataset {dataset} gives inputs of shape "
            f"{tuple(shape)} (use model=mlp)",
        )
    entry.check(cfg, shape, dataset)
    return caps


def build_model(
    cfg: Mapping[str, Any], shape: Sequence[int], num_classes: int, act: ActFactory
) -> nn.Module:
    """A freshly initialised model for inputs of ``shape``."""
    model = MODELS[cfg["name"]].build(cfg, shape, num_classes, act)
    initialize(model, cfg.get("init", "default"), float(cfg.get("init_std", 0.1)))
    return model


__all__ = ["MLP", "MODELS", "VGG", "LeNet", "PreActResNet18", "build_model", "check_model"]
