"""Padé activation units (Molina, Schramowski, Kersting, ICLR 2020): the ``rational`` family.

    F(x) = P(x) / Q(x),  P(x) = a_0 + a_1 x + ... + a_m x^m,
    Q(x) = 1 + |b_1| |x| + |b_2| |x|^2 + ... + |b_n| |x|^n

This is the "safe" denominator with the absolute value on every term (version A of the
authors' rational_activations library), so Q >= 1 and F has no poles. The coefficients
start from a least-squares fit of F to a known activation on an interval.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
import torch
from torch import nn

from adaptrun.activations.bases import BASES, make_base
from adaptrun.activations.family import (
    FAMILIES,
    ActivationConfig,
    ActivationFamily,
    Capabilities,
    require,
    require_choice,
    require_interval,
    unit_shape,
)
from adaptrun.activations.piecewise import unit_curves
from adaptrun.core.errors import is_count, is_number

GRANULARITIES = ("layer", "channel", "element")


class Rational(nn.Module):
    """P(x) / Q(x) with coefficients per layer (``units = ()``) or per unit.

    ``numerator`` has shape (m + 1, *units) and ``denominator`` (n, *units), so each
    coefficient broadcasts against one sample's features.
    """

    def __init__(self, numerator: torch.Tensor, denominator: torch.Tensor) -> None:
        super().__init__()
        self.units = tuple(numerator.shape[1:])
        self.numerator = nn.Parameter(numerator.clone())
        self.denominator = nn.Parameter(denominator.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.numerator, self.denominator
        p = a[-1] * x + a[-2]  # Horner: no powers of x held in memory
        for j in range(a.shape[0] - 3, -1, -1):
            p = p * x + a[j]
        ax = x.abs()
        s = b[-1].abs()
        for k in range(b.shape[0] - 2, -1, -1):
            s = s * ax + b[k].abs()
        return p / (1 + s * ax)

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        return unit_curves(self, x)

    def extra_repr(self) -> str:
        m, n = self.numerator.shape[0] - 1, self.denominator.shape[0]
        return f"degrees=({m}, {n}), units={self.units}"


@functools.cache
def fitted_coefficients(
    m: int, n: int, target: str, negative_slope: float, low: float, high: float
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(a_0..a_m, b_1..b_n) of the safe rational function closest to ``target`` on
    [low, high] in least squares.

    The linearised problem P(x) - f(x) sum_k c_k |x|^k = f(x) gives a start; scipy's
    least_squares then fits the real parametrisation (with |b_k|) from there.
    """
    from scipy.optimize import least_squares  # imported here: only rational runs need it

    x = np.linspace(low, high, 2001)
    with torch.no_grad():
        f = make_base(target, negative_slope)(torch.from_numpy(x)).numpy()
    powers = np.stack([x**j for j in range(m + 1)], 1)
    abs_powers = np.stack([np.abs(x) ** k for k in range(1, n + 1)], 1)
    design = np.concatenate([powers, -f[:, None] * abs_powers], 1)
    start = np.linalg.lstsq(design, f, rcond=None)[0]

    def residual(theta: np.ndarray) -> np.ndarray:
        a, b = theta[: m + 1], np.abs(theta[m + 1 :])
        return powers @ a / (1 + abs_powers @ b) - f

    theta = least_squares(residual, start, method="lm", max_nfev=5000).x
    return tuple(theta[: m + 1].tolist()), tuple(np.abs(theta[m + 1 :]).tolist())


@dataclasses.dataclass
class RationalConfig(ActivationConfig):
    """numerator, denominator: the degrees m and n; fit, negative_slope, fit_range: the
    function the coefficients start from and where; granularity: one coefficient set per
    ``layer`` (the paper), per ``channel`` (per feature after a dense layer) or per
    ``element``."""

    family: str = "rational"
    numerator: int = 5
    denominator: int = 4
    fit: str = "leaky_relu"
    negative_slope: float = 0.01
    fit_range: list[float] = dataclasses.field(default_factory=lambda: [-3.0, 3.0])
    granularity: str = "layer"


def _check(config: RationalConfig) -> None:
    require(is_count(config.numerator, 1), "numerator", "must be an integer >= 1")
    require(is_count(config.denominator, 1), "denominator", "must be an integer >= 1")
    require_choice(config.fit, BASES, "fit", "function")
    require(is_number(config.negative_slope), "negative_slope", "must be a number")
    require_interval(config.fit_range, "fit_range")
    require_choice(config.granularity, GRANULARITIES, "granularity")


def _build(config: RationalConfig, shape: tuple[int, ...], shared: dict[str, Any]) -> Rational:
    low, high = config.fit_range
    a, b = fitted_coefficients(
        config.numerator,
        config.denominator,
        config.fit,
        float(config.negative_slope),
        float(low),
        float(high),
    )
    units = () if config.granularity == "layer" else unit_shape(shape, config.granularity)
    ones = [1] * len(units)
    numerator = torch.tensor(a).view(-1, *ones).expand(-1, *units)
    denominator = torch.tensor(b).view(-1, *ones).expand(-1, *units)
    return Rational(numerator.float(), denominator.float())


FAMILIES.register(
    ActivationFamily(
        name="rational",
        config=RationalConfig,
        build=_build,
        check=_check,
        capabilities=Capabilities(stackable=True),
        doc="Padé activation units: P(x) / Q(x), safe denominator, fitted to leaky ReLU",
    )
)
