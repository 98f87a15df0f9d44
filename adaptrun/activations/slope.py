"""Jagtap et al.'s adaptive activations: sigma(n * a * x) with a trainable slope a."""

from __future__ import annotations

import torch
from torch import nn

from adaptrun.activations.bases import Sin
from adaptrun.activations.fused import fused_slope, use_triton


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
        impl: str = "auto",
    ) -> None:
        super().__init__()
        self.base = base
        self.a = a
        self.n = float(n)
        self.variant = variant
        self.recovery_weight = float(recovery_weight)
        self.normalization = normalization
        self.impl = impl  # auto | torch | triton (see adaptrun.activations.fused)
        self.base_name = base_name(base)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.base_name is not None and use_triton(self.impl, x):
            weight = self.base.weight if self.base_name == "prelu" else None
            neg = getattr(self.base, "negative_slope", 0.01)
            return fused_slope(x, self.a, self.n, self.base_name, neg, weight)
        return self.base((self.n * self.a) * x)

    def slope(self) -> torch.Tensor:
        """The effective slope n*a, detached, for logging."""
        return (self.n * self.a).detach()

    def extra_repr(self) -> str:
        return (
            f"variant={self.variant}, n={self.n}, a_shape={tuple(self.a.shape)}, impl={self.impl}"
        )


def base_name(base: nn.Module) -> str | None:
    """The fused kernels' name for a base module, or None where they have no twin."""
    if isinstance(base, nn.PReLU):
        return "prelu" if base.weight.numel() == 1 else None
    if isinstance(base, nn.GELU):
        return "gelu" if base.approximate == "none" else None
    kinds = {nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
    kinds.update({nn.SiLU: "silu", Sin: "sin"})
    return kinds.get(type(base))
