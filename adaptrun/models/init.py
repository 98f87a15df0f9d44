"""Weight initialisation schemes selectable by ``model.init``."""

from __future__ import annotations

from torch import nn

from adaptrun.models.registry import INITS


def initialize(model: nn.Module, scheme: str, std: float = 0.1) -> None:
    """Re-initialise every Linear and Conv layer's weights, biases to zero.

    ``default`` keeps PyTorch's own init; ``glorot_normal`` is Xavier-normal; ``normal``
    draws N(0, std^2), as the Jagtap authors' code does for its function example.
    """
    if scheme == "default":
        return
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; valid: {', '.join(INITS)}")
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            if scheme == "glorot_normal":
                nn.init.xavier_normal_(module.weight)
            else:
                nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
