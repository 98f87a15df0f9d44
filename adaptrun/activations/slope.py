"""Jagtap et al.'s adaptive activations: sigma(n * a * x) with a trainable slope a."""

from __future__ import annotations

import torch
from torch import nn


class SlopeActivation(nn.Module):
    """sigma(n * a * x), where ``a`` broadcasts against one sample's features.

    ``a`` is passed in rather than created so the global variant can hand the same
    Parameter to every call site; ``model.parameters()`` then counts it once.
    The slope recovery settings live here so ``model_penalty`` can find them without
    the training loop knowing about activations.
    """

    def __init__(
        self,
        base: nn.Module,
        a: nn.Parameter,
        n: float,
        variant: str,
        recovery_weight: float = 0.0,
        normalization: str = "mean",
    ) -> None:
        super().__init__()
        self.base = base
        self.a = a
        self.n = float(n)
        self.variant = variant
        self.recovery_weight = float(recovery_weight)
        self.normalization = normalization

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base((self.n * self.a) * x)

    def slope(self) -> torch.Tensor:
        """The effective slope n*a, detached, for logging."""
        return (self.n * self.a).detach()

    def extra_repr(self) -> str:
        return f"variant={self.variant}, n={self.n}, a_shape={tuple(self.a.shape)}"
