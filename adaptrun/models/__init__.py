"""Model names to builders; every model takes its input shape, class count and activations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import nn

from adaptrun.errors import is_count, require
from adaptrun.models import lenet
from adaptrun.models.init import INITS, initialize
from adaptrun.models.lenet import LeNet
from adaptrun.models.mlp import MLP
from adaptrun.models.mlp1 import MLP1
from adaptrun.models.preact_resnet import PreActResNet18
from adaptrun.models.vgg import VGG

ActFactory = Callable[[Sequence[int]], nn.Module]


def _mlp(cfg: Mapping[str, Any], shape: Sequence[int], classes: int, act: ActFactory) -> nn.Module:
    return MLP(shape, [int(cfg["width"])] * int(cfg["hidden_layers"]), classes, act)


def _vgg(cfg: Mapping[str, Any], shape: Sequence[int], classes: int, act: ActFactory) -> nn.Module:
    filters = list(cfg["filters"])[: int(cfg["blocks"])]
    return VGG(shape, filters, int(cfg["dense"]), classes, act)


def _lenet(
    cfg: Mapping[str, Any], shape: Sequence[int], classes: int, act: ActFactory
) -> nn.Module:
    return LeNet(shape, classes, act, float(cfg.get("dropout", 0.5)))


def _preact_resnet18(
    cfg: Mapping[str, Any], shape: Sequence[int], classes: int, act: ActFactory
) -> nn.Module:
    return PreActResNet18(shape, classes, act)


def _transfer(
    cfg: Mapping[str, Any], shape: Sequence[int], classes: int, act: ActFactory
) -> nn.Module:
    from adaptrun.models.transfer import build_transfer  # imports torchvision's models

    return build_transfer(cfg, shape, classes, act)


def _mlp1(cfg: Mapping[str, Any], shape: Sequence[int], classes: int, act: ActFactory) -> nn.Module:
    return MLP1(shape, int(cfg["hidden"]), classes, act)


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp1": _mlp1,
    "vgg11": _transfer,
    "resnet18": _transfer,
    "mlp": _mlp,
    "vgg": _vgg,
    "lenet": _lenet,
    "preact_resnet18": _preact_resnet18,
}


def check_model(cfg: Mapping[str, Any], shape: Sequence[int], dataset: str) -> None:
    """Config-only checks, including whether the model can take the dataset's images."""
    name = cfg["name"]
    require(name in BUILDERS, "model.name", f"unknown model {name!r}; valid: {', '.join(BUILDERS)}")
    require(
        cfg.get("init", "default") in INITS,
        "model.init",
        f"unknown init {cfg.get('init')!r}; valid: {', '.join(INITS)}",
    )
    if name not in ("mlp", "mlp1"):
        require(
            len(shape) == 3,
            "model",
            f"model {name} needs images; dataset {dataset} gives inputs of shape {tuple(shape)} "
            "(use model=mlp)",
        )
    if name == "mlp":
        require(is_count(cfg["hidden_layers"]), "model.hidden_layers", "must be an integer >= 1")
        require(is_count(cfg["width"]), "model.width", "must be an integer >= 1")
    elif name == "vgg":
        filters = list(cfg["filters"])
        blocks = cfg["blocks"]
        require(
            is_count(blocks) and blocks <= len(filters),
            "model.blocks",
            f"must be between 1 and {len(filters)} (the length of model.filters)",
        )
        require(all(is_count(f) for f in filters), "model.filters", "must be positive integers")
        require(is_count(cfg["dense"]), "model.dense", "must be an integer >= 1")
        _fits(min(shape[1], shape[2]) >= 2**blocks, f"vgg{blocks}", 2**blocks, shape, dataset)
    elif name == "mlp1":
        require(is_count(cfg["hidden"]), "model.hidden", "must be an integer >= 1")
    elif name in ("vgg11", "resnet18"):
        last = cfg["adaptive_layers"]
        require(
            last is None or is_count(last, 0),
            "model.adaptive_layers",
            f"must be null (every activation site) or an integer >= 0 (got {last!r})",
        )
        size = cfg["input_size"]
        require(
            size is None or is_count(size, 32),
            "model.input_size",
            f"must be null (keep the dataset's size) or an integer >= 32 (got {size!r})",
        )
        smallest = size or min(shape[1], shape[2])
        _fits(smallest >= 32, name, 32, shape, dataset)
        mult = cfg["backbone_lr_mult"]
        require(
            isinstance(mult, (int, float)) and mult >= 0,
            "model.backbone_lr_mult",
            f"must be >= 0 (got {mult!r})",
        )
    elif name == "lenet":
        dropout = cfg.get("dropout", 0.5)
        require(
            isinstance(dropout, (int, float)) and 0 <= dropout < 1,
            "model.dropout",
            f"must be in [0, 1) (got {dropout!r})",
        )
        _fits(min(shape[1], shape[2]) >= lenet.MIN_SIZE, "lenet", lenet.MIN_SIZE, shape, dataset)


def _fits(ok: bool, model: str, size: int, shape: Sequence[int], dataset: str) -> None:
    require(
        ok,
        "model",
        f"model {model} cannot take dataset {dataset}: it needs images of at least "
        f"{size}x{size} and {dataset} has {shape[1]}x{shape[2]}",
    )


def build_model(
    cfg: Mapping[str, Any], shape: Sequence[int], num_classes: int, act: ActFactory
) -> nn.Module:
    """A freshly initialised model for images of ``shape`` (C, H, W)."""
    model = BUILDERS[cfg["name"]](cfg, shape, num_classes, act)
    initialize(model, cfg.get("init", "default"), float(cfg.get("init_std", 0.1)))
    return model


__all__ = ["BUILDERS", "MLP", "VGG", "LeNet", "PreActResNet18", "build_model", "check_model"]
