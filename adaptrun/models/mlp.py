"""A fully connected network: flatten, hidden layers of Linear -> activation, Linear."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from adaptrun.activations.derivatives import elementwise
from adaptrun.core.errors import is_count, require
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

    def taylor(
        self, x: torch.Tensor, directions: Sequence[torch.Tensor], second: Sequence[int] = ()
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The output, its derivatives along each of ``directions`` (each one input's shape)
        and its second derivatives along the directions numbered in ``second``, carried
        forward layer by layer with the values: for z = W h + b they are W h', W h''; for
        h = f(z), f'(z) z' and f''(z) z'^2 + f'(z) z''. One forward pass gives all of them
        exactly, and one backward pass their parameter gradients: no nested autograd."""
        h = x.flatten(1)
        first = [d.flatten().expand_as(h) for d in directions]
        curved: list[torch.Tensor | None] = [None] * len(second)  # zero until an activation
        for layer in self.net:
            if isinstance(layer, nn.Flatten):
                continue
            if isinstance(layer, nn.Linear):
                h = layer(h)
                first = [d @ layer.weight.T for d in first]
                curved = [None if c is None else c @ layer.weight.T for c in curved]
                continue
            derivatives = elementwise(layer)
            if derivatives is None:  # the config check only lets closed forms reach here
                raise TypeError(f"{type(layer).__name__} has no closed-form derivatives")
            f, d1, d2 = derivatives(h)
            curved = [
                d2 * first[k].square() + (0 if c is None else d1 * c)
                for k, c in zip(second, curved, strict=True)
            ]
            h, first = f, [d1 * d for d in first]
        return h, first, [torch.zeros_like(h) if c is None else c for c in curved]


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
        capabilities=ModelCapabilities(
            images=False, stackable=True, forward_derivatives=True, width="width"
        ),
    )
)
