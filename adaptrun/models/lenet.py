"""The LeNet-like network of the locally-adaptive paper's benchmark code."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from adaptrun.core.errors import is_number, require
from adaptrun.models.registry import (
    MODELS,
    ActFactory,
    ModelCapabilities,
    ModelConfig,
    ModelEntry,
    fits,
)

MIN_SIZE = 16  # two (conv5 -> pool2) stages need at least 16x16 inputs


def _after_stage(size: int) -> int:
    return (size - 4) // 2  # 5x5 valid convolution, then 2x2 max-pool


class LeNet(nn.Module):
    """conv 64@5x5 -> pool -> act; conv 64@5x5 -> pool -> act; fc 1024 -> act -> dropout; fc.

    The slope sits after pooling and before the activation, as in the authors' code.
    """

    def __init__(
        self, in_shape: Sequence[int], num_classes: int, act: ActFactory, dropout: float = 0.5
    ) -> None:
        super().__init__()
        channels, h, w = in_shape
        h1, w1 = _after_stage(h), _after_stage(w)
        h2, w2 = _after_stage(h1), _after_stage(w1)
        self.conv1 = nn.Conv2d(channels, 64, 5)
        self.act1 = act((64, h1, w1))
        self.conv2 = nn.Conv2d(64, 64, 5)
        self.act2 = act((64, h2, w2))
        self.fc1 = nn.Linear(64 * h2 * w2, 1024)
        self.act3 = act((1024,))
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.pool(self.conv1(x)))
        x = self.act2(self.pool(self.conv2(x)))
        x = self.dropout(self.act3(self.fc1(x.flatten(1))))
        return self.fc2(x)


@dataclasses.dataclass
class LeNetConfig(ModelConfig):
    name: str = "lenet"
    dropout: float = 0.5


def _check(cfg: Mapping[str, Any], shape: Sequence[int], dataset: str) -> None:
    dropout = cfg["dropout"]
    require(
        is_number(dropout) and 0 <= dropout < 1,
        "model.dropout",
        f"must be in [0, 1) (got {dropout!r})",
    )
    fits(min(shape[1], shape[2]) >= MIN_SIZE, "lenet", MIN_SIZE, shape, dataset)


MODELS.register(
    ModelEntry(
        name="lenet",
        config=LeNetConfig,
        build=lambda cfg, shape, classes, act: LeNet(shape, classes, act, float(cfg["dropout"])),
        check=_check,
        # dropout's random mask would differ from a separate run's
        capabilities=lambda cfg: ModelCapabilities(stackable=float(cfg["dropout"]) == 0),
    )
)
