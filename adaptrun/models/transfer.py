"""torchvision's VGG11 and ResNet18 for transfer learning, our activations in the end layers."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from adaptrun.activations import activation_parameters
from adaptrun.core.errors import UserError, is_count, is_number, require
from adaptrun.models.convert import convert_activations
from adaptrun.models.registry import (
    MODELS,
    ActFactory,
    ModelCapabilities,
    ModelConfig,
    ModelEntry,
    fits,
)

# name -> (torchvision builder, its ImageNet weights enum and member, the head's path)
ARCHITECTURES = {
    "vgg11": ("vgg11", "VGG11_Weights", "classifier.6"),
    "resnet18": ("resnet18", "ResNet18_Weights", "fc"),
}


def _torchvision(name: str) -> tuple[Any, Any]:
    """The builder and weights of ``name``; torchvision is imported on first use (it takes
    a second, which runs of other models never need)."""
    tvm = importlib.import_module("torchvision.models")
    builder, weights, _ = ARCHITECTURES[name]
    return getattr(tvm, builder), getattr(tvm, weights).IMAGENET1K_V1


def weights_file(name: str) -> Path:
    """Where torchvision's weights API keeps the ImageNet checkpoint of ``name``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(_torchvision(name)[1].url).name


def pretrained_state(name: str, download: bool) -> dict[str, torch.Tensor]:
    """The ImageNet state dict from the torch hub cache; downloaded only if allowed.

    torch.hub downloads into a temporary file and renames it when complete, so an
    interrupted download leaves nothing the next run would trust.
    """
    weights = _torchvision(name)[1]
    path = weights_file(name)
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    how = f"place {path.name} (from {weights.url}) in {path.parent}, or set model.pretrained=false"
    if not download:
        raise UserError(
            f"model {name}: pretrained ImageNet weights not found at {path} and "
            f"model.download=false; {how}"
        )
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"model {name}: pretrained ImageNet weights not found at {path} and "
            f"the download failed ({reason}); {how}"
        ) from exc


class Transfer(nn.Module):
    """A converted torchvision network behind an input adapter: grey images are repeated
    to three channels and, if ``input_size`` is set, resized to it."""

    def __init__(
        self, net: nn.Module, in_channels: int, input_size: int | None, head: str = ""
    ) -> None:
        super().__init__()
        self.net = net
        self.head = head  # the new classifier's path in net
        self.in_channels = in_channels
        self.input_size = input_size
        self.backbone_lr_mult = 1.0  # the optimizer's rate multiplier for the backbone

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.input_size:
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.adapt(x))

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.net.get_submodule(self.head).parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Everything pretrained: not the new head, not our activations."""
        own = {id(p) for p in [*self.head_parameters(), *activation_parameters(self)]}
        return [p for p in self.parameters() if id(p) not in own]


def build_transfer(
    cfg: Mapping[str, Any], shape: Sequence[int], num_classes: int, act: ActFactory
) -> Transfer:
    name = cfg["name"]
    constructor, _ = _torchvision(name)
    net = constructor(weights=None)
    if cfg["pretrained"]:
        net.load_state_dict(pretrained_state(name, bool(cfg["download"])))
    head = ARCHITECTURES[name][2]
    parent, _, leaf = head.rpartition(".")
    old = net.get_submodule(head)
    net.get_submodule(parent).register_module(leaf, nn.Linear(old.in_features, num_classes))
    channels, height, width = shape
    adapter = Transfer(nn.Identity(), channels, cfg["input_size"])
    example = adapter.adapt(torch.zeros(2, channels, height, width))
    net = convert_activations(net.eval(), act, example, last=cfg["adaptive_layers"])
    model = Transfer(net.train(), channels, cfg["input_size"], head)
    if cfg["freeze_backbone"]:
        for p in model.backbone_parameters():
            p.requires_grad_(False)
    model.backbone_lr_mult = float(cfg["backbone_lr_mult"])
    return model


@dataclasses.dataclass
class TransferConfig(ModelConfig):
    """pretrained: ImageNet weights from the torch hub cache; adaptive_layers: the last k
    activation call sites get the configured activation (null: all of them)."""

    pretrained: bool = True
    download: bool = True
    adaptive_layers: int | None = 2
    freeze_backbone: bool = False
    backbone_lr_mult: float = 1.0
    input_size: int | None = None


def _check(cfg: Mapping[str, Any], shape: Sequence[int], dataset: str) -> None:
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
    fits((size or min(shape[1], shape[2])) >= 32, cfg["name"], 32, shape, dataset)
    mult = cfg["backbone_lr_mult"]
    require(
        is_number(mult) and mult >= 0,
        "model.backbone_lr_mult",
        f"must be >= 0 (got {mult!r})",
    )


for _name in ARCHITECTURES:
    MODELS.register(
        ModelEntry(
            name=_name,
            config=TransferConfig,
            build=build_transfer,
            check=_check,
            capabilities=ModelCapabilities(images=True),
        )
    )
