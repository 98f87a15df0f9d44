"""The shallow VGG-style CIFAR baseline used by the AdAct paper (1, 2 or 3 blocks)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from adaptrun.core.errors import is_count, require
from adaptrun.models.registry import (
    MODELS,
    ActFactory,
    ModelCapabilities,
    ModelConfig,
    ModelEntry,
    fits,
)


class VGG(nn.Module):
    """Blocks of conv3x3 -> act -> conv3x3 -> act -> maxpool2, then dense -> act -> dense.

    Each activation gets the shape of the feature map it sees, so per-element slopes
    know their size.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        filters: Sequence[int],
        dense: int,
        num_classes: int,
        act: ActFactory,
    ) -> None:
        super().__init__()
        channels, height, width = in_shape
        blocks: list[nn.Module] = []
        for out in filters:
            blocks += [
                nn.Conv2d(channels, out, 3, padding=1),
                act((out, height, width)),
                nn.Conv2d(out, out, 3, padding=1),
                act((out, height, width)),
                nn.MaxPool2d(2),
            ]
            channels, height, width = out, height // 2, width // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, dense),
            act((dense,)),
            nn.Linear(dense, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@dataclasses.dataclass
class VGGConfig(ModelConfig):
    """The first ``blocks`` entries of ``filters`` are used."""

    name: str = "vgg"
    blocks: int = 3
    filters: list[int] = dataclasses.field(default_factory=lambda: [32, 64, 128])
    dense: int = 128
    init: str = "glorot_normal"


def _check(cfg: Mapping[str, Any], shape: Sequence[int], dataset: str) -> None:
    filters = list(cfg["filters"])
    blocks = cfg["blocks"]
    require(
        is_count(blocks) and blocks <= len(filters),
        "model.blocks",
        f"must be between 1 and {len(filters)} (the length of model.filters)",
    )
    require(all(is_count(f) for f in filters), "model.filters", "must be positive integers")
    require(is_count(cfg["dense"]), "model.dense", "must be an integer >= 1")
    fits(min(shape[1], shape[2]) >= 2**blocks, f"vgg{blocks}", 2**blocks, shape, dataset)


def _build(
    cfg: Mapping[str, Any], shape: Sequence[int], classes: int, act: ActFactory
) -> nn.Module:
    filters = list(cfg["filters"])[: int(cfg["blocks"])]
    return VGG(shape, filters, int(cfg["dense"]), classes, act)


MODELS.register(
    ModelEntry(
        name="vgg",
        config=VGGConfig,
        build=_build,
        check=_check,
        capabilities=ModelCapabilities(images=True, stackable=True),
    )
)
