"""The slope recovery term S(a), and the model-wide penalty the training loop adds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

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
    """Everything the model's modules add to the loss; zero if nothing asks for it.

    Each module's own ``penalty()``, plus each class's ``joint_penalty(modules)`` over all
    of its modules in the model at once (slope recovery couples every layer's slopes).
    Either may return None: nothing to add.
    """
    terms: list[torch.Tensor] = []
    joint: dict[Any, list[nn.Module]] = {}  # class -> its modules (it has joint_penalty)
    for module in model.modules():
        if hasattr(type(module), "joint_penalty"):
            joint.setdefault(type(module), []).append(module)
        own = getattr(module, "penalty", None)
        term = own() if callable(own) else None
        if term is not None:
            terms.append(term)
    for kind, modules in joint.items():
        term = kind.joint_penalty(modules)
        if term is not None:
            terms.append(term)
    if not terms:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        return torch.zeros((), device=device)
    return sum(terms[1:], terms[0])
