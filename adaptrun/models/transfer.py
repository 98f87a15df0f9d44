"""torchvision's VGG11 and ResNet18 for transfer learning, our activations in the end layers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm

from adaptrun.activations import activation_parameters
from adaptrun.errors import UserError
from adaptrun.models.convert import convert_activations

ActFactory = Callable[[Sequence[int]], nn.Module]
ARCHITECTURES = {
    "vgg11": (tvm.vgg11, tvm.VGG11_Weights.IMAGENET1K_V1),
    "resnet18": (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1),
}


def weights_file(name: str) -> Path:
    """Where torchvision's weights API keeps the ImageNet checkpoint of ``name``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(ARCHITECTURES[name][1].url).name


def pretrained_state(name: str, download: bool) -> dict[str, torch.Tensor]:
    """The ImageNet state dict from the torch hub cache; downloaded only if allowed.

    torch.hub downloads into a temporary file and renames it when complete, so an
    interrupted download leaves nothing the next run would trust.
    """
    weights = ARCHITECTURES[name][1]
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

    def __init__(self, net: nn.Module, in_channels: int, input_size: int | None) -> None:
        super().__init__()
        self.net = net
        self.in_channels = in_channels
        self.input_size = input_size

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
        head = self.net.fc if hasattr(self.net, "fc") else self.net.classifier[6]
        return list(head.parameters())

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Everything pretrained: not the new head, not our activations."""
        own = {id(p) for p in [*self.head_parameters(), *activation_parameters(self)]}
        return [p for p in self.parameters() if id(p) not in own]


def build_transfer(
    cfg: Mapping[str, Any], shape: Sequence[int], num_classes: int, act: ActFactory
) -> Transfer:
    name = cfg["name"]
    constructor, _ = ARCHITECTURES[name]
    net = constructor(weights=None)
    if cfg["pretrained"]:
        net.load_state_dict(pretrained_state(name, bool(cfg["download"])))
    if name == "resnet18":
        net.fc = nn.Linear(net.fc.in_features, num_classes)
    else:
        net.classifier[6] = nn.Linear(net.classifier[6].in_features, num_classes)
    channels, height, width = shape
    adapter = Transfer(nn.Identity(), channels, cfg["input_size"])
    example = adapter.adapt(torch.zeros(2, channels, height, width))
    net = convert_activations(net.eval(), act, example, last=cfg["adaptive_layers"])
    model = Transfer(net.train(), channels, cfg["input_size"])
    if cfg["freeze_backbone"]:
        for p in model.backbone_parameters():
            p.requires_grad_(False)
    model.backbone_lr_mult = float(cfg["backbone_lr_mult"])
    return model
