"""Pictures of learned activation functions, for TensorBoard."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from adaptrun.core.figures import pyplot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SHOWN_UNITS = 4


def has_curves(model: nn.Module) -> bool:
    """Whether any module of the model can draw its learned function."""
    return any(callable(getattr(m, "curves", None)) for m in model.modules())


@torch.no_grad()
def activation_curves(model: nn.Module, low: float = -4.0, high: float = 4.0) -> dict[str, Figure]:
    """One figure per module that offers ``curves(x)``: a few units' functions and their
    mean over units."""
    plt = pyplot()
    figures = {}
    for name, module in model.named_modules():
        curves = getattr(module, "curves", None)
        if not callable(curves):
            continue
        device = next(module.parameters(), torch.empty(0)).device
        x = torch.linspace(low, high, 401, device=device)
        y = curves(x).reshape(len(x), -1)
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        for unit in range(min(SHOWN_UNITS, y.shape[1])):
            ax.plot(x.cpu(), y[:, unit].cpu(), lw=1, alpha=0.7, label=f"unit {unit}")
        if y.shape[1] > 1:
            ax.plot(x.cpu(), y.mean(1).cpu(), "k-", lw=2, label=f"mean of {y.shape[1]}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_title(f"{name} ({type(module).__name__})")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figures[f"activation/{name}"] = fig
    return figures
