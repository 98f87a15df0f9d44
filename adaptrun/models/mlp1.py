"""One hidden layer with bypass weights: y = W_o [1, x, f(W [1, x])], as in the MOLF papers."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from adaptrun.core.errors import is_count, require
from adaptrun.models.registry import MODELS, ActFactory, ModelCapabilities, ModelConfig, ModelEntry


class MLP1(nn.Module):
    """The output layer sees the inputs (bypass) and the hidden units, so OWO is one
    linear solve over both."""

    def __init__(
        self, in_shape: Sequence[int], hidden: int, out_features: int, act: ActFactory
    ) -> None:
        super().__init__()
        inputs = math.prod(in_shape)
        self.hidden = nn.Linear(inputs, hidden)
        self.act = act((hidden,))
        self.output = nn.Linear(inputs + hidden, out_features)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(flattened inputs, hidden net inputs, hidden outputs)."""
        x = x.flatten(1)
        net = self.hidden(x)
        return x, net, self.act(net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _, o = self.features(x)
        return self.output(torch.cat([x, o], 1))


@dataclasses.dataclass
class MLP1Config(ModelConfig):
    name: str = "mlp1"
    hidden: int = 30


def _check(cfg: Mapping[str, Any], shape: Sequence[int], dataset: str) -> None:
    require(is_count(cfg["hidden"]), "model.hidden", "must be an integer >= 1")


MODELS.register(
    ModelEntry(
        name="mlp1",
        config=MLP1Config,
        build=lambda cfg, shape, classes, act: MLP1(shape, int(cfg["hidden"]), classes, act),
        check=_check,
        capabilities=ModelCapabilities(images=False, stackable=True, molf=True, width="hidden"),
    )
)
