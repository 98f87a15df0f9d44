"""Pictures of learned piecewise-linear activations, for TensorBoard."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import nn

from adaptrun.activations.piecewise import APL, AdAct

SHOWN_UNITS = 4


@torch.no_grad()
def activation_curves(
    model: nn.Module, low: float = -4.0, high: float = 4.0
) -> dict[str, plt.Figure]:
    """One figure per AdAct/APL layer: a few units' functions and their mean over units."""
    figures = {}
    for name, module in model.named_modules():
        if not isinstance(module, (AdAct, APL)):
            continue
        device = next(module.parameters()).device
        x = torch.linspace(low, high, 401, device=device)
        units = module.units
        # Every unit sees the same x: shape (points, *units).
        y = module(x.view(-1, *[1] * len(units)).expand(-1, *units)).reshape(len(x), -1)
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        for unit in range(min(SHOWN_UNITS, y.shape[1])):
            ax.plot(x.cpu(), y[:, unit].cpu(), lw=1, alpha=0.7, label=f"unit {unit}")
        ax.plot(x.cpu(), y.mean(1).cpu(), "k-", lw=2, label=f"mean of {y.shape[1]}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_title(f"{name} ({type(module).__name__})")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figures[f"activation/{name}"] = fig
    return figures
