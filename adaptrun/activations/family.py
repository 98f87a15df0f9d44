"""Activation families: the registry, the factory that builds one module per call site,
and the hooks the runner reads from any activation module.

A family is one module of code plus one registry entry (``FAMILIES.register``) that
declares its typed config, its checks, its capabilities and how to build a module for
one call site. A config names its family in its ``family`` key.

What the runner asks of a built module (all optional, see docs/plugins.md):

- ``penalty() -> Tensor | None``: a term added to the loss (APL's L2 on its hinges).
- ``joint_penalty(modules) -> Tensor | None`` (a classmethod): a term over every module
  of that class in the model at once (slope recovery couples all layers' slopes).
- ``slopes(name) -> dict[str, Tensor]``: values logged under ``slopes/<key>`` (scalars as
  scalars, tensors as histograms plus their mean); ``name`` is the module's path.
- ``curves(x) -> Tensor``: the function each unit computes on the points ``x``, shape
  (points, units), drawn into TensorBoard.
- ``no_weight_decay() -> Iterable[str]``: the names of its own parameters exempt from
  weight decay; without it, all of them are (an activation's parameters are not weights).
- ``derivatives(z) -> (f, f', f'')``: the function and its first two derivatives in closed
  form, so physics-informed tasks carry input derivatives forward (derivatives.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from adaptrun.core.errors import ConfigError, is_number, nearest
from adaptrun.core.registry import Registry

MARK = "adaptrun_activation"  # set on every module a factory builds: its call site's shape
GRANULARITIES = ("channel", "element")


class SpecError(ConfigError):
    """An invalid activation setting, naming the field (``activation.<field>``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"activation.{field}", message)
        self.field = field


def require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise SpecError(field, message)


def require_choice(value: Any, valid: Collection[str], field: str, what: str = "") -> None:
    """``value`` is one of ``valid``; the error lists them."""
    require(value in valid, field, f"unknown {what or field} {value!r}; valid: {', '.join(valid)}")


def require_interval(values: Sequence[Any], field: str) -> None:
    """``[low, high]``: two finite numbers, low < high."""
    low_high = list(values)
    require(
        len(low_high) == 2 and all(is_number(v) for v in low_high) and low_high[0] < low_high[1],
        field,
        f"must be [low, high] with low < high (got {low_high})",
    )


@dataclasses.dataclass
class ActivationConfig:
    """The keys every activation option has."""

    name: str = ""  # the option (conf/activation/<name>.yaml), recorded with each run
    family: str = ""  # the registry entry that builds it


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What the runner may do with a family's modules.

    stackable: exact under torch.func.vmap over stacked parameters (trainer.stack).
    fused_kernel: has Triton kernels chosen by ``impl``, whose backward is not itself
        differentiable: tasks that differentiate their inputs get the PyTorch modules.
    molf: optimizer=molf knows how to train it.
    second_derivatives: its modules give f, f' and f'' in closed form (``derivatives``), so
        a network's input derivatives can be carried forward (task.derivatives=forward).
    """

    stackable: bool = True
    fused_kernel: bool = False
    molf: bool = False
    second_derivatives: bool = False


def _no_check(config: Any) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class ActivationFamily:
    """A registry entry: everything the runner knows about one family."""

    name: str
    config: type | None  # its structured config; None: free keys (the custom family)
    build: Callable[[Any, tuple[int, ...], dict[str, Any]], nn.Module]
    check: Callable[[Any], None] = _no_check
    capabilities: Capabilities | Callable[[Any], Capabilities] = Capabilities()
    doc: str = ""  # one line for the docs' table
    # settings its modules carry per run (as buffers), so runs that differ only in them
    # stack (hydra/sweeper=stacked); each with what must still be equal within a stack
    # (its value -> a class; runs stack only within one), or None
    per_run: Mapping[str, Callable[[str], str] | None] = dataclasses.field(default_factory=dict)
    # settings it accepts and applies to nothing (the fixed family's n), so one sweep over
    # them can include it: the report and the dashboard leave them out of what ran
    inert: tuple[str, ...] = ()

    def capabilities_of(self, config: Any) -> Capabilities:
        caps = self.capabilities
        return caps(config) if callable(caps) else caps

    def make_config(self, values: Mapping[str, Any]) -> Any:
        """The typed config from a mapping (a composed config section, or a plain dict)."""
        if self.config is None:
            return dict(values)
        names = {f.name for f in dataclasses.fields(self.config)}
        unknown = sorted(set(values) - names)
        if unknown:
            hint = nearest(unknown[0], sorted(names), "activation.", n=3)
            raise SpecError(
                unknown[0],
                f"not a setting of family {self.name}; {hint}it has: "
                + ", ".join(sorted(names - {"name", "family"})),
            )
        return self.config(**values)


FAMILIES: Registry[ActivationFamily] = Registry("activation", "activation.family")


def family_of(config: Any) -> tuple[ActivationFamily, Any]:
    """The family entry of a config and the typed config itself."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    if isinstance(config, Mapping):
        family = FAMILIES[str(config.get("family", ""))]
        return family, family.make_config(config)
    return FAMILIES[config.family], config


def inert_settings(activation: Mapping[str, Any]) -> tuple[str, ...]:
    """The settings of an activation config (a composed section or a plain mapping) its
    family applies to nothing, so no record of it lists them as what ran."""
    family = str(activation.get("family", ""))
    return FAMILIES[family].inert if family in FAMILIES else ()


def unit_shape(shape: tuple[int, ...], granularity: str) -> tuple[int, ...]:
    """Per-unit parameter shape: per feature, per channel (C, 1, 1) or per element."""
    if len(shape) == 3 and granularity == "channel":
        return (shape[0], 1, 1)
    return shape


class ActivationFactory:
    """Builds the activation modules of one model, one per call site.

    Models call it with one sample's feature shape at that site: ``(features,)`` after a
    dense layer, ``(channels, height, width)`` after a convolution. ``shared`` holds what a
    family shares between a model's call sites (the global variant's one slope).
    """

    def __init__(self, config: Any) -> None:
        self.family, self.config = family_of(config)
        self.family.check(self.config)
        self.shared: dict[str, Any] = {}

    @property
    def capabilities(self) -> Capabilities:
        return self.family.capabilities_of(self.config)

    def __call__(self, shape: Sequence[int]) -> nn.Module:
        module = self.family.build(self.config, tuple(int(s) for s in shape), self.shared)
        setattr(module, MARK, tuple(int(s) for s in shape))
        return module


def site_shape(module: nn.Module) -> tuple[int, ...] | None:
    """One sample's feature shape at the call site a factory built ``module`` for."""
    shape = getattr(module, MARK, None)
    return shape if isinstance(shape, tuple) else None


def activation_modules(model: nn.Module) -> list[nn.Module]:
    """The modules an activation factory built, outermost only."""
    found: list[nn.Module] = []
    inside: set[int] = set()
    for module in model.modules():
        if id(module) in inside:
            continue
        if hasattr(module, MARK):
            found.append(module)
            inside.update(id(m) for m in module.modules())
    return found


def activation_parameters(model: nn.Module, exempt_only: bool = False) -> list[nn.Parameter]:
    """The parameters of a model's activations, each once; with ``exempt_only``, those
    that get no weight decay (all, unless a module names them in ``no_weight_decay()``)."""
    seen: dict[int, nn.Parameter] = {}
    for module in activation_modules(model):
        params = dict(module.named_parameters())
        chooser = getattr(module, "no_weight_decay", None)
        names: Iterable[str] = chooser() if exempt_only and chooser is not None else params
        for name in names:
            seen.setdefault(id(params[name]), params[name])
    return list(seen.values())
