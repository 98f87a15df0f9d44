"""Fixed activation functions by name, and the ``fixed`` family that uses them alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from adaptrun.activations.family import (
    FAMILIES,
    ActivationConfig,
    ActivationFamily,
    Capabilities,
    require,
    require_choice,
)
from adaptrun.core.errors import is_number


class Sin(nn.Module):
    """sin(x): torch has no module for it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


SMOOTH = ("tanh", "sigmoid", "sin", "gelu", "silu")  # closed-form f' and f'' (derivatives.py)
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


@dataclasses.dataclass
class FixedConfig(ActivationConfig):
    """A fixed activation: ``base`` alone. ``n`` and ``slope_recovery`` are accepted and
    change nothing, so a sweep over them (``activation=relu,global activation.n=1,2``)
    can include the fixed baseline."""

    family: str = "fixed"
    base: str = "relu"
    negative_slope: float = 0.01  # leaky_relu only
    n: float = 1.0
    slope_recovery: float = 0.0


def check_base(config: Any) -> None:
    """``base`` and ``negative_slope``, shared by every family built on a fixed base."""
    require_choice(config.base, BASES, "base")
    require(
        is_number(config.negative_slope),
        "negative_slope",
        f"must be a number (got {config.negative_slope!r})",
    )


def check_scale(config: Any) -> None:
    """``n`` and ``slope_recovery``, shared by the fixed and the slope families."""
    require(is_number(config.n) and config.n >= 1, "n", f"must be a number >= 1 (got {config.n!r})")
    require(
        is_number(config.slope_recovery) and config.slope_recovery >= 0,
        "slope_recovery",
        f"must be a weight >= 0, 0 meaning off (got {config.slope_recovery!r})",
    )


def _check_fixed(config: FixedConfig) -> None:
    check_base(config)
    check_scale(config)


FAMILIES.register(
    ActivationFamily(
        name="fixed",
        config=FixedConfig,
        build=lambda config, shape, shared: make_base(config.base, config.negative_slope),
        check=_check_fixed,
        capabilities=lambda c: Capabilities(molf=True, second_derivatives=c.base in SMOOTH),
        doc="a fixed function: relu, leaky_relu, tanh, sigmoid, sin, gelu, silu, prelu",
        inert=("n", "slope_recovery"),
    )
)
