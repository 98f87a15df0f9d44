"""Closed-form first and second derivatives of the smooth bases, for forward-mode
(Taylor) derivatives through a network.

``elementwise(module)`` gives, for an activation module that computes an elementwise
function f, a callable z -> (f(z), f'(z), f''(z)); None where there is none (relu-type
bases have no second derivative at their kink). A module of the user's own may offer the
same through a ``derivatives(z)`` method.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from adaptrun.activations.bases import Sin

Derivatives = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def _tanh(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = torch.tanh(z)
    d1 = 1 - t * t
    return t, d1, -2 * t * d1


def _sigmoid(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(z)
    d1 = s * (1 - s)
    return s, d1, d1 * (1 - 2 * s)


def _sin(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sin(z)
    return s, torch.cos(z), -s


def _silu(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(z)
    ds = s * (1 - s)
    return z * s, s + z * ds, ds * (2 + z * (1 - 2 * s))


def _gelu(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cdf = 0.5 * (1 + torch.erf(z / math.sqrt(2)))
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return z * cdf, cdf + z * pdf, pdf * (2 - z * z)


BY_TYPE: dict[type, Derivatives] = {
    nn.Tanh: _tanh,
    nn.Sigmoid: _sigmoid,
    Sin: _sin,
    nn.SiLU: _silu,
}


def elementwise(module: nn.Module) -> Derivatives | None:
    """z -> (f, f', f'') for an activation module, or None where there is no closed form."""
    own = getattr(module, "derivatives", None)
    if callable(own):
        return own
    if isinstance(module, nn.GELU):
        return _gelu if module.approximate == "none" else None
    return BY_TYPE.get(type(module))
