"""Jagtap et al.'s adaptive activations: sigma(n * a * x) with a trainable slope a shared by
the whole network (global), one per layer (layer-wise) or one per neuron (neuron-wise),
plus the slope recovery term. The ``slope`` family."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import nn

from adaptrun.activations.bases import SMOOTH, Sin, check_base, check_scale, make_base
from adaptrun.activations.derivatives import Derivatives, elementwise
from adaptrun.activations.family import (
    FAMILIES,
    GRANULARITIES,
    ActivationConfig,
    ActivationFamily,
    Capabilities,
    require_choice,
    unit_shape,
)
from adaptrun.activations.fused import IMPLS, fused_slope
from adaptrun.activations.recovery import NORMALIZATIONS, slope_recovery
from adaptrun.activations.selfcheck import serve

VARIANTS = ("global", "layerwise", "neuronwise")


class SlopeActivation(nn.Module):
    """sigma(n * a * x), where ``a`` broadcasts against one sample's features.

    ``a`` is passed in rather than created so the global variant can hand the same
    Parameter to every call site; ``model.parameters()`` then counts it once.
    """

    scale: torch.Tensor  # buffers, typed for the checker (nn.Module's getattr is untyped)
    recovery: torch.Tensor

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
        # n and the recovery weight again as tensors, so stacked runs
        # (adaptrun.training.stacked) can each carry their own under vmap; not in the
        # state dict (the config has them)
        self.register_buffer("scale", torch.tensor(self.n), persistent=False)
        self.register_buffer("recovery", torch.tensor(self.recovery_weight), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        name = self.base_name
        if name is None:  # a base the kernels have no twin of
            return self.reference(x)
        weight = cast(torch.Tensor, self.base.weight) if name == "prelu" else None
        neg = getattr(self.base, "negative_slope", 0.01)

        def fused(t: torch.Tensor) -> torch.Tensor:
            return fused_slope(t, self.a, self.n, name, neg, weight)

        params: list[torch.Tensor] = [self.a] if weight is None else [self.a, weight]
        kernel, units = f"slope[{name}]", tuple(self.a.shape)
        return serve(kernel, self.impl, fused, self.reference, x, units, params)

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """base(n a x) in PyTorch: the fused kernel's twin and its self-check's reference."""
        return self.base((self.scale * self.a) * x)

    @property
    def derivatives(self) -> Derivatives | None:
        """z -> (f, f', f'') of base(s z), s = n*a, where the base has them in closed form:
        f' = s base'(s z), f'' = s^2 base''(s z)."""
        inner = elementwise(self.base)
        if inner is None:
            return None

        def slope_derivatives(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            s = self.scale * self.a
            f, d1, d2 = inner(s * z)
            return f, s * d1, s * s * d2

        return slope_derivatives

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """(points, units): base(n a_u x) for every unit u's slope (one for the global and
        layer-wise variants)."""
        return self.base(x[:, None] * (self.scale * self.a).reshape(1, -1))

    def slope(self) -> torch.Tensor:
        """The effective slope n*a, detached."""
        return (self.n * self.a).detach()

    def slopes(self, name: str) -> dict[str, torch.Tensor]:
        """n*a under the module's name; the global variant's one slope as ``global``."""
        return {"global" if self.variant == "global" else name: self.slope()}

    @classmethod
    def joint_penalty(cls, modules: Sequence[SlopeActivation]) -> torch.Tensor | None:
        """W_a * S(a) over the model's layers; a slope shared by several call sites (the
        global variant) counts once. W_a is the ``recovery`` buffer (a stacked run's own);
        whether the term exists at all follows the config's weight (> 0)."""
        groups: dict[tuple[float, str], dict[int, torch.Tensor]] = {}
        weights: dict[tuple[float, str], torch.Tensor] = {}
        for module in modules:
            if module.recovery_weight > 0:
                key = (module.recovery_weight, module.normalization)
                groups.setdefault(key, {})[id(module.a)] = module.a
                weights.setdefault(key, module.recovery)
        terms = [
            weights[key] * slope_recovery(list(p.values()), key[1]) for key, p in groups.items()
        ]
        return sum(terms[1:], terms[0]) if terms else None

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


@dataclasses.dataclass
class SlopeConfig(ActivationConfig):
    """variant: global | layerwise | neuronwise (Jagtap's GAAF, L-LAAF, N-LAAF).
    n: scale factor >= 1; slopes start at a = 1/n so n*a = 1.
    granularity: neuron-wise slopes after a convolution, one per ``channel`` or per
        ``element`` (channel x height x width, the paper's choice).
    slope_recovery: weight W_a of S(a); 0 turns it off.
    normalization: ``mean`` over layers (paper) or ``sum`` (authors' code).
    impl: ``auto`` (fused Triton kernels on CUDA, PyTorch elsewhere), ``torch``, ``triton``.
    """

    family: str = "slope"
    variant: str = "layerwise"
    base: str = "relu"
    n: float = 1.0
    granularity: str = "element"
    slope_recovery: float = 0.0
    normalization: str = "mean"
    negative_slope: float = 0.01
    impl: str = "auto"


def _check(config: SlopeConfig) -> None:
    require_choice(config.variant, VARIANTS, "variant")
    check_base(config)
    check_scale(config)
    require_choice(config.granularity, GRANULARITIES, "granularity")
    require_choice(config.normalization, NORMALIZATIONS, "normalization")
    require_choice(config.impl, IMPLS, "impl", "implementation")


def _build(config: SlopeConfig, shape: tuple[int, ...], shared: dict[str, Any]) -> nn.Module:
    if config.variant == "global":
        if "a" not in shared:
            shared["a"] = _init_slope((), config.n)
        a = shared["a"]
    elif config.variant == "layerwise":
        a = _init_slope((), config.n)
    else:
        a = _init_slope(unit_shape(shape, config.granularity), config.n)
    base = make_base(config.base, config.negative_slope)
    return SlopeActivation(
        base, a, config.n, config.variant, config.slope_recovery, config.normalization, config.impl
    )


def _recovery_class(value: str) -> str:
    try:
        return "recovery" if float(value) > 0 else "none"
    except ValueError:
        return "?" + value  # not a number: the check will refuse it; keep it alone


def _init_slope(shape: tuple[int, ...], n: float) -> nn.Parameter:
    return nn.Parameter(torch.full(shape, 1.0 / n))


FAMILIES.register(
    ActivationFamily(
        name="slope",
        config=SlopeConfig,
        build=_build,
        check=_check,
        capabilities=lambda c: Capabilities(fused_kernel=True, second_derivatives=c.base in SMOOTH),
        doc="Jagtap's trainable slopes: base(n * a * x), global, layer-wise or neuron-wise",
        # n and the recovery weight ride along as buffers; a zero weight means no recovery
        # term at all, so those runs stack among themselves
        per_run={"n": None, "slope_recovery": _recovery_class},
    )
)
