"""Learned activation functions: each unit's function on a grid of inputs, drawn into
TensorBoard and summarised (as numbers) for the report's comparison figure."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

from adaptrun.activations.family import activation_modules, site_shape
from adaptrun.core.figures import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SHOWN_UNITS = 4
PROBE_VALUES = 1 << 22  # points x units a probe may evaluate (16 MiB of float32)
log = logging.getLogger(__name__)


def _learnable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules whose function can change in training, by name: those that offer
    ``curves(x)`` and the factory-built activations with trainable parameters (a user's
    class needs no hook: it is probed)."""
    built = {id(m) for m in activation_modules(model)}
    found: list[tuple[str, nn.Module]] = []
    inside: set[int] = set()
    for name, module in model.named_modules():
        if id(module) in inside:
            continue
        offers = callable(getattr(module, "curves", None))
        trains = id(module) in built and any(p.requires_grad for p in module.parameters())
        if offers or trains:
            found.append((name, module))
            inside.update(id(m) for m in module.modules())
    return found


def has_curves(model: nn.Module) -> bool:
    """Whether any module of the model has a learned function to draw."""
    return bool(_learnable(model))


def unit_functions(module: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """(points, units): the function each unit computes on ``x``, from ``curves(x)`` or,
    for an elementwise module without it, by probing: every unit of its call site gets the
    same inputs. None where it cannot be probed (a shape the probe cannot feed, too many
    units, an error: a module need not be elementwise)."""
    curves = getattr(module, "curves", None)
    if callable(curves):
        return curves(x).reshape(len(x), -1)
    shape = site_shape(module)
    if shape is None:
        return None
    units = int(torch.Size(shape).numel())
    if len(x) * units > PROBE_VALUES:
        log.debug("%s: %d units are too many to probe", type(module).__name__, units)
        return None
    try:
        y = module(x.view(-1, *[1] * len(shape)).expand(-1, *shape))
    except Exception as exc:  # a module that is not elementwise: nothing to draw
        log.debug("%s cannot be probed: %s", type(module).__name__, exc)
        return None
    if not isinstance(y, torch.Tensor) or y.shape != (len(x), *shape):
        return None
    return y.reshape(len(x), -1)


@torch.no_grad()
def learned_functions(
    model: nn.Module, low: float = -4.0, high: float = 4.0, points: int = 81
) -> dict[str, dict[str, list[float]]]:
    """Per learnable module: the inputs and the mean, min and max over its units of their
    functions there, as plain lists (metrics.json keeps them; the report draws them)."""
    return {
        name: {
            "x": [round(v, 6) for v in x.tolist()],
            "mean": y.mean(1).tolist(),
            "min": y.min(1).values.tolist(),
            "max": y.max(1).values.tolist(),
        }
        for name, _, x, y in _evaluated(model, low, high, points)
        if torch.isfinite(y).all()
    }


def _evaluated(
    model: nn.Module, low: float, high: float, points: int
) -> list[tuple[str, nn.Module, torch.Tensor, torch.Tensor]]:
    """(name, module, x, functions) of every learnable module that can be evaluated on
    ``points`` inputs in [low, high], in eval mode (its dropout off), float32 on the CPU."""
    found = []
    for name, module in _learnable(model):
        device = next(module.parameters(), torch.empty(0)).device
        x = torch.linspace(low, high, points, device=device)
        was_training = module.training
        module.eval()
        try:
            y = unit_functions(module, x)
        finally:
            module.train(was_training)
        if y is not None:
            found.append((name, module, x.cpu(), y.float().cpu()))
    return found


@torch.no_grad()
def activation_curves(model: nn.Module, low: float = -4.0, high: float = 4.0) -> dict[str, Figure]:
    """One figure of the model's learned activations, a panel per learnable module: a
    few units' functions and their mean over units (one image per drawing, not one per
    layer: each costs a render and a PNG)."""
    drawn = _evaluated(model, low, high, 401)
    if not drawn:
        return {}
    plt = pyplot()
    cols = min(4, len(drawn))
    rows = -(-len(drawn) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    for ax in list(axes.flat)[len(drawn) :]:
        ax.axis("off")
    for ax, (name, module, x, y) in zip(axes.flat, drawn, strict=False):
        for unit in range(min(SHOWN_UNITS, y.shape[1])):
            ax.plot(x, y[:, unit], lw=1, alpha=0.7, label=f"unit {unit}")
        if y.shape[1] > 1:
            ax.plot(x, y.mean(1), "k-", lw=2, label=f"mean of {y.shape[1]}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_title(f"{name} ({type(module).__name__})", fontsize=9)
        ax.legend(fontsize=6)
    # fixed margins (in inches, whatever the grid) that fit these labels: tight_layout
    # measures every tick label, 0.66 s a figure here, paid by every run of a sweep
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=0.45 / width, right=1 - 0.1 / width, bottom=0.35 / height, top=1 - 0.3 / height,
        wspace=0.25, hspace=0.45,
    )  # fmt: skip
    return {"activations": fig}
