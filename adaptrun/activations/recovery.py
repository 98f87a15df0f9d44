"""The slope recovery term S(a) and the model-wide penalty the training loop adds."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adaptrun.activations.slope import SlopeActivation

NORMALIZATIONS = ("mean", "sum")


def slope_recovery(slopes: Sequence[torch.Tensor], normalization: str = "mean") -> torch.Tensor:
    """S(a) = 1 / (norm_k exp(mean_i a^k_i)), one entry of ``slopes`` per layer.

    ``mean`` divides the sum by the number of layers (the paper); ``sum`` does not
    (the authors' code). A scalar a^k gives the layer-wise term, a vector the
    neuron-wise one; a single shared a gives the global term 1/exp(a).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; valid: mean, sum")
    terms = torch.stack([torch.exp(a.mean()) for a in slopes])
    return 1.0 / (terms.mean() if normalization == "mean" else terms.sum())


def model_penalty(model: nn.Module) -> torch.Tensor:
    """Everything the activations add to the loss; zero if nothing asks for it.

    The weighted slope recovery terms W_a * S(a) (a parameter shared by several call
    sites, as in the global variant, counts once), plus each module's own ``penalty()``
    (APL's L2 on its hinge parameters).
    """
    groups: dict[tuple[float, str], dict[int, torch.Tensor]] = {}
    own: list[torch.Tensor] = []
    for module in model.modules():
        if isinstance(module, SlopeActivation) and module.recovery_weight > 0:
            key = (module.recovery_weight, module.normalization)
            groups.setdefault(key, {})[id(module.a)] = module.a
        elif hasattr(module, "penalty") and getattr(module, "decay", 0) > 0:
            own.append(module.penalty())
    terms = [w * slope_recovery(list(p.values()), norm) for (w, norm), p in groups.items()]
    if not terms and not own:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        return torch.zeros((), device=device)
    return sum(terms + own)
