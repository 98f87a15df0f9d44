"""Fused Triton kernels for the adaptive activations' CUDA path.

An elementwise activation is memory-bound: the plain PyTorch modules read and write the
activation several times (n*a*x, the base, the autograd intermediates; H gathered
tables for the piecewise-linear ones). Here the forward is one pass over x, and the
backward one pass that writes the input gradient and reduces the parameter gradients
in registers (one atomic add per unit and tile). The PyTorch modules stay the reference;
tests compare the two (through Triton's interpreter where there is no GPU).

Layout: x is viewed as a (rows, cols) matrix in which the unit (the parameter slot)
depends on the row alone (per channel in NCHW: row = b*C + c) or on the column alone
(per feature, per element, per channel in channels-last).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from typing import Any

import torch
from torch.autograd.function import once_differentiable

BASE_CODES = {
    "relu": 0,
    "leaky_relu": 1,
    "tanh": 2,
    "sigmoid": 3,
    "sin": 4,
    "gelu": 5,
    "silu": 6,
    "prelu": 7,
}
IMPLS = ("auto", "torch", "triton")
BLOCK_R, BLOCK_C = 16, 64


@functools.cache  # asked on every forward of every adaptive module on CUDA
def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_usable() -> bool:
    """Triton can run here: on a CUDA GPU, or through its interpreter (TRITON_INTERPRET=1)."""
    interpreted = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    return triton_available() and (torch.cuda.is_available() or interpreted)


def use_triton(impl: str, x: torch.Tensor) -> bool:
    """``auto``: the kernels on CUDA tensors when Triton is installed; ``triton``: always
    (on CPU tensors that needs TRITON_INTERPRET=1, which the tests use).

    Never inside torch.func transforms (vmap in stacked runs, grad in the compiled PINN
    step): the kernels have no batching rule. Never while torch.compile traces: Inductor
    fuses the reference's elementwise ops itself, and tracing into the kernels is untested.
    """
    if impl == "torch" or (impl == "auto" and not (x.is_cuda and triton_available())):
        return False
    if torch.compiler.is_compiling():
        return False
    return not torch._C._functorch.is_functorch_wrapped_tensor(x)


def layout_of(x: torch.Tensor, units: tuple[int, ...]) -> str:
    """How the kernels view x (``flat``, ``nchw`` or ``channels_last``), and ``shared``
    where one parameter set serves every element: each is a kernel of its own."""
    kind, _, count = _layout(x, units)
    return f"{kind} shared" if count == 1 else kind


def _layout(x: torch.Tensor, units: tuple[int, ...]) -> tuple[str, bool, int]:
    """How x is viewed as (rows, cols): the view's kind, whether the unit follows the row,
    and the number of units.

    ``units`` is the parameter shape broadcast against one sample: () or (1,) for one
    slope, (C, 1, 1) per channel, the sample's feature shape per element or feature.
    """
    count = math.prod(units)
    per_channel = x.dim() == 4 and count > 1 and tuple(units) == (x.shape[1], 1, 1)
    channels_last = (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    )
    if channels_last and (count == 1 or per_channel):
        return "channels_last", False, count  # (B*H*W, C): the channel is the column
    if per_channel:
        return "nchw", True, count  # (B*C, H*W): the channel is row % C
    return "flat", count == 1, count  # (B, features): the unit is the column (or 0)


def _2d(t: torch.Tensor, kind: str) -> torch.Tensor:
    """``t`` (made dense in the layout's memory order) as the layout's (rows, cols) view."""
    if kind == "channels_last":
        c = t.shape[1]
        return t.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).view(-1, c)
    t = t.contiguous()
    return t.view(t.shape[0] * t.shape[1], -1) if kind == "nchw" else t.view(t.shape[0], -1)


def _empty(x: torch.Tensor, kind: str) -> torch.Tensor:
    fmt = torch.channels_last if kind == "channels_last" else torch.contiguous_format
    return torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=fmt)


@functools.cache
def _kernels() -> dict[str, Any]:
    """The kernels, imported (and compiled) on first use."""
    from adaptrun.activations import _triton_kernels as k

    return {
        "slope": (k.slope_fwd, k.slope_bwd),
        "adact": (k.adact_fwd, k.adact_bwd),
        "apl": (k.apl_fwd, k.apl_bwd),
        "cdiv": k.cdiv,
    }


def _grid(x2d: torch.Tensor) -> tuple[int, int]:
    cdiv = _kernels()["cdiv"]
    return cdiv(x2d.shape[0], BLOCK_R), cdiv(x2d.shape[1], BLOCK_C)


class _Fused(torch.autograd.Function):
    """A forward and backward kernel pair over x and its activation's parameters.

    ``consts`` are the kernels' scalar arguments, ``static`` their compile-time ones.
    The backward kernel takes the forward's tensors, then dy, dx and one gradient
    buffer per parameter (fp32: the atomic adds accumulate there).
    """

    @staticmethod
    def forward(ctx: Any, kind: str, units: tuple, consts: tuple, static: tuple, x, *params):
        layout, row_units, count = _layout(x, units)
        x2d, out = _2d(x, layout), _empty(x, layout)
        flat = [p.contiguous() for p in params]
        fwd, _ = _kernels()[kind]
        fwd[_grid(x2d)](x2d, *flat, _2d(out, layout), *x2d.shape, count, *consts,
                        ROW_UNITS=row_units, **dict(static), BR=BLOCK_R, BC=BLOCK_C)  # fmt: skip
        ctx.save_for_backward(x, *params)
        ctx.meta = (kind, units, consts, static, layout, row_units, count)
        return out

    @staticmethod
    @once_differentiable  # a second derivative through the kernels raises, never lies
    def backward(ctx: Any, gy: torch.Tensor) -> tuple:
        x, *params = ctx.saved_tensors
        kind, _units, consts, static, layout, row_units, count = ctx.meta
        x2d, gx = _2d(x, layout), _empty(x, layout)
        flat = [p.contiguous() for p in params]
        grads = [torch.zeros(p.shape, device=x.device, dtype=torch.float32) for p in params]
        _, bwd = _kernels()[kind]
        bwd[_grid(x2d)](x2d, *flat, _2d(gy, layout), _2d(gx, layout), *grads, *x2d.shape,
                        count, *consts, ROW_UNITS=row_units, **dict(static), BR=BLOCK_R,
                        BC=BLOCK_C)  # fmt: skip
        out = [
            g.to(p.dtype) if p.requires_grad else None for g, p in zip(grads, params, strict=True)
        ]
        return None, None, None, None, gx, *out


def fused_slope(
    x: torch.Tensor,
    a: torch.Tensor,
    scale: float,
    base: str,
    negative_slope: float = 0.01,
    prelu_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """base(scale * a * x), ``a`` broadcasting against one sample: one pass each way."""
    w = prelu_weight if prelu_weight is not None else a.new_zeros(1)
    consts = (float(scale), float(negative_slope))
    static = (("BASE", BASE_CODES[base]),)
    return _Fused.apply("slope", tuple(a.shape), consts, static, x, a, w)


def fused_adact(x: torch.Tensor, values: torch.Tensor, low: float, step: float) -> torch.Tensor:
    """AdAct with hinges low, low + step, ...: values (*units, H), one pass each way."""
    static = (("H", int(values.shape[-1])),)
    return _Fused.apply("adact", tuple(values.shape[:-1]), (low, step), static, x, values)


def fused_apl(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """APL: relu(x) + sum_s a_s relu(b_s - x), a and b (*units, S), one pass each way."""
    static = (("S", int(a.shape[-1])),)
    return _Fused.apply("apl", tuple(a.shape[:-1]), (), static, x, a, b)
