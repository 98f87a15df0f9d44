"""Fixed activation functions, by name, each built fresh for every call site."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class Sin(nn.Module):
    """sin(x): torch has no module for it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


BASES: dict[str, Callable[[float], nn.Module]] = {
    "relu": lambda neg: nn.ReLU(),
    "leaky_relu": lambda neg: nn.LeakyReLU(neg),
    "tanh": lambda neg: nn.Tanh(),
    "sigmoid": lambda neg: nn.Sigmoid(),
    "sin": lambda neg: Sin(),
    "gelu": lambda neg: nn.GELU(),
    "silu": lambda neg: nn.SiLU(),
    "prelu": lambda neg: nn.PReLU(num_parameters=1, init=0.25),
}


def make_base(name: str, negative_slope: float = 0.01) -> nn.Module:
    """A new module computing the named fixed activation (PReLU gets its own parameter)."""
    if name not in BASES:
        raise ValueError(f"unknown base {name!r}; valid: {', '.join(BASES)}")
    return BASES[name](negative_slope)
