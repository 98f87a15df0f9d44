"""From an activation spec to a fresh module per call site.

Models ask the factory for one module per place where an activation is applied,
passing the shape of one sample's features there: ``(features,)`` after a dense
layer, ``(channels, height, width)`` after a convolution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from adaptrun.activations.bases import BASES, make_base
from adaptrun.activations.fused import IMPLS
from adaptrun.activations.piecewise import APL, AdAct
from adaptrun.activations.piecewise import INITS as PIECEWISE_INITS
from adaptrun.activations.recovery import NORMALIZATIONS
from adaptrun.activations.slope import SlopeActivation
from adaptrun.errors import is_count, is_number

VARIANTS = ("fixed", "global", "layerwise", "neuronwise", "adact", "apl")
PIECEWISE = ("adact", "apl")
GRANULARITIES = ("channel", "element")


class SpecError(ValueError):
    """An invalid activation setting, naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True)
class ActivationSpec:
    """What kind of activation a model gets; validated on construction.

    variant: fixed | global | layerwise | neuronwise (Jagtap's GAAF, L-LAAF, N-LAAF).
    n: scale factor >= 1; slopes start at a = 1/n so n*a = 1.
    granularity: for neuron-wise slopes after a convolution, one per ``channel`` or one
        per ``element`` (channel x height x width, the paper's choice).
    slope_recovery: weight W_a of the slope recovery term; 0 turns it off.
    normalization: ``mean`` over layers (paper) or ``sum`` (authors' code).
    hinges, hinge_range, init: AdAct's fixed, evenly spaced hinge locations and the
        function (relu | leaky_relu) its learned hinge values start from.
    segments, decay: APL's number of hinge terms and L2 weight on its a and b.
    impl: ``auto`` (fused Triton kernels on CUDA, PyTorch elsewhere), ``torch`` (the
        reference) or ``triton``.
    """

    variant: str = "fixed"
    base: str = "relu"
    n: float = 1.0
    granularity: str = "element"
    slope_recovery: float = 0.0
    normalization: str = "mean"
    negative_slope: float = 0.01
    hinges: int = 5
    hinge_range: tuple[float, float] = (-2.0, 2.0)
    init: str = "relu"
    segments: int = 5
    decay: float = 0.001
    impl: str = "auto"

    def __post_init__(self) -> None:
        def check(ok: bool, field: str, message: str) -> None:
            if not ok:
                raise SpecError(field, message)

        check(
            self.variant in VARIANTS,
            "variant",
            f"unknown variant {self.variant!r}; valid: {', '.join(VARIANTS)}",
        )
        check(self.base in BASES, "base", f"unknown base {self.base!r}; valid: {', '.join(BASES)}")
        check(is_number(self.n) and self.n >= 1, "n", f"must be a number >= 1 (got {self.n!r})")
        check(
            self.granularity in GRANULARITIES,
            "granularity",
            f"unknown granularity {self.granularity!r}; valid: {', '.join(GRANULARITIES)}",
        )
        check(
            is_number(self.slope_recovery) and self.slope_recovery >= 0,
            "slope_recovery",
            f"must be a weight >= 0, 0 meaning off (got {self.slope_recovery!r})",
        )
        check(
            self.normalization in NORMALIZATIONS,
            "normalization",
            f"unknown normalization {self.normalization!r}; valid: {', '.join(NORMALIZATIONS)}",
        )
        object.__setattr__(self, "hinge_range", tuple(self.hinge_range))
        check(
            is_count(self.hinges, 2),
            "hinges",
            f"must be an integer >= 2 (got {self.hinges!r})",
        )
        low_high = self.hinge_range
        check(
            len(low_high) == 2
            and all(is_number(v) for v in low_high)
            and low_high[0] < low_high[1],
            "hinge_range",
            f"must be [low, high] with low < high (got {list(low_high)})",
        )
        check(
            self.init in PIECEWISE_INITS,
            "init",
            f"unknown init {self.init!r}; valid: {', '.join(PIECEWISE_INITS)}",
        )
        if self.variant == "adact":
            spacing = (low_high[1] - low_high[0]) / (self.hinges - 1)
            position = -low_high[0] / spacing
            check(
                abs(position - round(position)) < 1e-6 and low_high[0] <= 0 <= low_high[1],
                "hinges",
                f"adact needs a hinge at 0 to start as {self.init}: use an odd "
                "number of hinges over a symmetric hinge_range",
            )
        check(
            is_count(self.segments),
            "segments",
            f"must be an integer >= 1 (got {self.segments!r})",
        )
        check(
            is_number(self.decay) and self.decay >= 0,
            "decay",
            f"must be >= 0 (got {self.decay!r})",
        )
        check(
            self.impl in IMPLS,
            "impl",
            f"unknown implementation {self.impl!r}; valid: {', '.join(IMPLS)}",
        )
        check(
            is_number(self.negative_slope),
            "negative_slope",
            f"must be a number (got {self.negative_slope!r})",
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ActivationSpec:
        """Build from a config section, ignoring keys that are not spec fields (e.g. name)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


class ActivationFactory:
    """Builds activation modules for one model; holds the global variant's shared slope."""

    def __init__(self, spec: ActivationSpec) -> None:
        self.spec = spec
        self._shared: nn.Parameter | None = None

    def __call__(self, shape: Sequence[int]) -> nn.Module:
        spec = self.spec
        base = make_base(spec.base, spec.negative_slope)
        if spec.variant == "fixed":
            return base
        units = self._units(tuple(int(s) for s in shape))
        if spec.variant == "adact":
            return AdAct(
                units, spec.hinges, spec.hinge_range, spec.init, spec.negative_slope, spec.impl
            )
        if spec.variant == "apl":
            return APL(units, spec.segments, spec.decay, spec.impl)
        a = self._slope_parameter(tuple(int(s) for s in shape))
        return SlopeActivation(
            base, a, spec.n, spec.variant, spec.slope_recovery, spec.normalization, spec.impl
        )

    def _units(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-unit parameter shape: per feature, per channel (C, 1, 1) or per element."""
        if len(shape) == 3 and self.spec.granularity == "channel":
            return (shape[0], 1, 1)
        return shape

    def _slope_parameter(self, shape: tuple[int, ...]) -> nn.Parameter:
        spec = self.spec
        if spec.variant == "global":
            if self._shared is None:
                self._shared = _init_slope((), spec.n)
            return self._shared
        if spec.variant == "layerwise":
            return _init_slope((), spec.n)
        return _init_slope(self._units(shape), spec.n)


def _init_slope(shape: tuple[int, ...], n: float) -> nn.Parameter:
    return nn.Parameter(torch.full(shape, 1.0 / n))


def activation_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The trainable parameters of a model's activations (slopes, PReLU weights, piecewise
    hinge values), each once."""
    seen: dict[int, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, (SlopeActivation, nn.PReLU, AdAct, APL)):
            for p in module.parameters():
                seen.setdefault(id(p), p)
    return list(seen.values())
