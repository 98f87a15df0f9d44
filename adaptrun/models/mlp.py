"""A fully connected network: flatten, hidden layers of Linear -> activation, Linear."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from adaptrun.errors import is_count, require
from adaptrun.models.registry import MODELS, ActFactory, ModelCapabilities, ModelConfig, ModelEntry


class MLP(nn.Module):
    """Jagtap's depth-D network: D-1 hidden layers, each followed by its own activation."""

    def __init__(
        self, in_shape: Sequence[int], widths: Sequence[int], out_features: int, act: ActFactory
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        previous = math.prod(in_shape)
        for width in widths:
            layers += [nn.Linear(previous, width), act((width,))]
            previous = width
        layers.append(nn.Linear(previous, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclasses.dataclass
class MLPConfig(ModelConfig):
    """hidden_layers x (Linear -> activation), then a Linear head."""

    name: str = "mlp"
    hidden_layers: int = 2
    width: int = 64


def _check(cfg: Mapping[str, Any], shape: Sequence[int], dataset: str) -> None:
    require(is_count(cfg["hidden_layers"]), "model.hidden_layers", "must be an integer >= 1")
    require(is_count(cfg["width"]), "model.width", "must be an integer >= 1")


MODELS.register(
    ModelEntry(
        name="mlp",
        config=MLPConfig,
        build=lambda cfg, shape, classes, act: MLP(
            shape, [int(cfg["width"])] * int(cfg["hidden_layers"]), classes, act
        ),
        check=_check,
        capabilities=ModelCapabilities(images=False, stackable=True),
    )
)
