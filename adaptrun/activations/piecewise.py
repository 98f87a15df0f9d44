"""Trainable piecewise-linear activations: AdAct (fixed hinges, learned values) and APL,
the ``adact`` and ``apl`` families.

Both keep one parameter set per unit: per feature after a dense layer, per channel (or
per element) after a convolution. ``units`` below is that parameter shape, which
broadcasts against one sample's features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from adaptrun.activations.family import (
    FAMILIES,
    GRANULARITIES,
    ActivationConfig,
    ActivationFamily,
    Capabilities,
    require,
    require_choice,
    require_interval,
    unit_shape,
)
from adaptrun.activations.fused import IMPLS, fused_adact, fused_apl
from adaptrun.activations.selfcheck import serve
from adaptrun.core.errors import is_count, is_number

INITS = ("relu", "leaky_relu")


def _per_unit(x: torch.Tensor, table: torch.Tensor, units: tuple[int, ...]) -> torch.Tensor:
    """table (*units, K) broadcast against x (B, *features) to (B, *features, K)."""
    view = table.reshape(1, *units, table.shape[-1])
    return view.expand(*x.shape, table.shape[-1])


def unit_curves(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(points, units): every unit of a per-unit activation evaluated on the same x."""
    units: tuple[int, ...] = getattr(module, "units")  # noqa: B009 (any per-unit module)
    return module(x.view(-1, *[1] * len(units)).expand(-1, *units)).reshape(len(x), -1)


class AdAct(nn.Module):
    """Rane et al.'s robust piecewise-linear activation.

    Hinges ns_1 < ... < ns_H are fixed and evenly spaced over ``hinge_range``; the learned
    values a_j = f(ns_j) are joined linearly, and beyond the end hinges the function
    continues with the end segments' slopes. Initialised from ReLU or leaky ReLU, it equals
    that function everywhere, provided 0 is one of the hinges.
    """

    positions: torch.Tensor  # a buffer: the fixed hinges

    def __init__(
        self,
        units: Sequence[int],
        hinges: int = 5,
        hinge_range: Sequence[float] = (-2.0, 2.0),
        init: str = "relu",
        negative_slope: float = 0.01,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        low, high = float(hinge_range[0]), float(hinge_range[1])
        if hinges < 2 or not low < high:
            raise ValueError("AdAct needs at least 2 hinges and hinge_range low < high")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
        positions = torch.linspace(low, high, hinges)
        at_zero = positions.abs() <= 1e-6 * (high - low)  # linspace rounds: -2 + 3 * 4/6 != 0
        positions[at_zero] = 0.0
        if not at_zero.any():
            raise ValueError(
                f"AdAct init={init} needs a hinge at 0 to reproduce the kink; use an odd "
                f"number of hinges over a symmetric range (got {hinges} over [{low}, {high}])"
            )
        self.units = tuple(int(u) for u in units)
        self.register_buffer("positions", positions)
        self.low, self.step = low, (high - low) / (hinges - 1)
        slope = 0.0 if init == "relu" else float(negative_slope)
        values = torch.where(positions > 0, positions, slope * positions)
        self.values = nn.Parameter(values.expand(*self.units, hinges).clone())
        self.impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def fused(t: torch.Tensor) -> torch.Tensor:
            return fused_adact(t, self.values, self.low, self.step)

        return serve("adact", self.impl, fused, self.reference, x, self.units, [self.values])

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The PyTorch formula: the fused kernel's twin and its self-check's reference."""
        hinges = self.positions.numel()
        segment = ((x - self.low) / self.step).floor().clamp(0, hinges - 2).long()
        left = self.low + segment * self.step
        table = _per_unit(x, self.values, self.units)
        a0 = table.gather(-1, segment.unsqueeze(-1)).squeeze(-1)
        a1 = table.gather(-1, (segment + 1).unsqueeze(-1)).squeeze(-1)
        return a0 + (a1 - a0) * ((x - left) / self.step)

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        return unit_curves(self, x)

    def extra_repr(self) -> str:
        return f"units={self.units}, hinges={self.positions.tolist()}"


class APL(nn.Module):
    """Agostinelli et al.'s adaptive piecewise-linear unit:
    max(0, x) + sum_s a_s max(0, -x + b_s), with a and b learned per unit.

    ``decay`` is the L2 weight on a and b that the original applies; model_penalty adds
    decay / 2 * (|a|^2 + |b|^2), the gradient plain weight decay would give.
    """

    def __init__(
        self, units: Sequence[int], segments: int = 5, decay: float = 0.001, impl: str = "auto"
    ) -> None:
        super().__init__()
        self.units = tuple(int(u) for u in units)
        bound = 0.5 / segments
        self.a = nn.Parameter(torch.empty(*self.units, segments).uniform_(-bound, bound))
        self.b = nn.Parameter(torch.randn(*self.units, segments) * 0.5)
        self.decay = float(decay)
        self.impl = impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def fused(t: torch.Tensor) -> torch.Tensor:
            return fused_apl(t, self.a, self.b)

        return serve("apl", self.impl, fused, self.reference, x, self.units, [self.a, self.b])

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The PyTorch formula: the fused kernel's twin and its self-check's reference."""
        a = _per_unit(x, self.a, self.units)
        b = _per_unit(x, self.b, self.units)
        return F.relu(x) + (a * F.relu(b - x.unsqueeze(-1))).sum(-1)

    def penalty(self) -> torch.Tensor | None:
        if self.decay == 0:
            return None
        return 0.5 * self.decay * (self.a.pow(2).sum() + self.b.pow(2).sum())

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        return unit_curves(self, x)

    def extra_repr(self) -> str:
        return f"units={self.units}, segments={self.a.shape[-1]}, decay={self.decay}"


@dataclasses.dataclass
class AdActConfig(ActivationConfig):
    """hinges, hinge_range: AdAct's fixed, evenly spaced hinge locations (odd and symmetric,
    so that 0 is a hinge); init: the function (relu | leaky_relu) the values start from."""

    family: str = "adact"
    granularity: str = "channel"  # after a convolution: one set per channel | element
    hinges: int = 5
    hinge_range: list[float] = dataclasses.field(default_factory=lambda: [-2.0, 2.0])
    init: str = "relu"
    negative_slope: float = 0.01  # leaky_relu init only
    impl: str = "auto"


@dataclasses.dataclass
class APLConfig(ActivationConfig):
    """segments: APL's number of hinge terms; decay: its L2 weight on a and b."""

    family: str = "apl"
    granularity: str = "channel"  # after a convolution: one set per channel | element
    segments: int = 5
    decay: float = 0.001
    impl: str = "auto"


def _check_common(config: Any) -> None:
    require_choice(config.granularity, GRANULARITIES, "granularity")
    require_choice(config.impl, IMPLS, "impl", "implementation")


def _check_adact(config: AdActConfig) -> None:
    _check_common(config)
    require(
        is_count(config.hinges, 2), "hinges", f"must be an integer >= 2 (got {config.hinges!r})"
    )
    require_interval(config.hinge_range, "hinge_range")
    require_choice(config.init, INITS, "init")
    low_high = list(config.hinge_range)
    spacing = (low_high[1] - low_high[0]) / (config.hinges - 1)
    position = -low_high[0] / spacing
    require(
        abs(position - round(position)) < 1e-6 and low_high[0] <= 0 <= low_high[1],
        "hinges",
        f"adact needs a hinge at 0 to start as {config.init}: use an odd "
        "number of hinges over a symmetric hinge_range",
    )
    require(
        is_number(config.negative_slope),
        "negative_slope",
        f"must be a number (got {config.negative_slope!r})",
    )


def _check_apl(config: APLConfig) -> None:
    _check_common(config)
    require(
        is_count(config.segments), "segments", f"must be an integer >= 1 (got {config.segments!r})"
    )
    require(
        is_number(config.decay) and config.decay >= 0,
        "decay",
        f"must be >= 0 (got {config.decay!r})",
    )


FAMILIES.register(
    ActivationFamily(
        name="adact",
        config=AdActConfig,
        build=lambda c, shape, shared: AdAct(
            unit_shape(shape, c.granularity),
            c.hinges,
            c.hinge_range,
            c.init,
            c.negative_slope,
            c.impl,
        ),
        check=_check_adact,
        capabilities=Capabilities(stackable=True, fused_kernel=True, molf=True),
        doc="AdAct: learned values at fixed hinges, linear in between",
    )
)
FAMILIES.register(
    ActivationFamily(
        name="apl",
        config=APLConfig,
        build=lambda c, shape, shared: APL(
            unit_shape(shape, c.granularity), c.segments, c.decay, c.impl
        ),
        check=_check_apl,
        capabilities=Capabilities(stackable=True, fused_kernel=True),
        doc="APL: max(0, x) + sum_s a_s max(0, -x + b_s), a and b learned per unit",
    )
)
