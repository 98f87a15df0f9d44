"""Weight initialisation schemes selectable by ``model.init``."""

from __future__ import annotations

from torch import nn

INITS = ("default", "glorot_normal")


def initialize(model: nn.Module, scheme: str) -> None:
    """Re-initialise every Linear and Conv layer; ``default`` keeps PyTorch's own init."""
    if scheme == "default":
        return
    if scheme != "glorot_normal":
        raise ValueError(f"unknown init {scheme!r}; valid: {', '.join(INITS)}")
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.xavier_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
