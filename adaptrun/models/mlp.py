"""A fully connected network: flatten, hidden layers of Linear -> activation, Linear."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

ActFactory = Callable[[Sequence[int]], nn.Module]


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
