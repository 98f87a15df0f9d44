"""Each fused kernel configuration proves itself once per process before it is used.

A kernel that fails to compile on the user's Triton or driver, or compiles to something
wrong, must not crash a sweep or, worse, train a different function. So the first time
a configuration (kernel, base, layout, dtype) is met, it runs once on a small random
input of that layout and dtype, and its output and every gradient are compared with
the PyTorch reference. A configuration that fails is logged once and served by the
reference for the rest of the process, unless ``activation.impl=triton`` asked for the
kernels explicitly: then it is an error. What each run used is recorded (``impl_used``
in metrics.json, ``activation.impl_used`` in the hparams).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from adaptrun.activations.fused import layout_of, use_triton
from adaptrun.core.errors import UserError

log = logging.getLogger(__name__)

# Norm-relative error allowed between kernel and reference, by the input's dtype: the
# kernels compute in fp32 (float64 inputs too) and store in the input's dtype.
TOLERANCE = {torch.float64: 1e-4, torch.float32: 1e-4, torch.bfloat16: 3e-2, torch.float16: 1e-2}

VERDICTS: dict[str, str | None] = {}  # configuration -> None (passed) or why it failed
_USED: dict[str, str] = {}  # configuration -> impl, since the current run began

IMPL_OUTCOMES = ("torch", "triton", "fallback")  # what activation.impl_used can say


class KernelCheckError(UserError):
    """activation.impl=triton, and a kernel configuration failed its self-check."""


def configuration(kernel: str, x: torch.Tensor, units: tuple[int, ...]) -> str:
    """The name a verdict is kept under, e.g. ``slope[tanh] channels_last bfloat16``."""
    return f"{kernel} {layout_of(x, units)} {str(x.dtype).removeprefix('torch.')}"


def _mismatch(name: str, got: torch.Tensor | None, want: torch.Tensor | None, tol: float) -> str:
    if got is None or want is None:
        return "" if got is None and want is None else f"{name} missing"
    if got.shape != want.shape:
        return f"{name} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    got, want = got.double(), want.double()
    if not torch.isfinite(got).all():
        return f"{name} is not finite"
    error = ((got - want).norm() / want.norm().clamp_min(1e-12)).item()
    return f"{name} differs by {error:.2g} (relative; allowed {tol:g})" if error > tol else ""


def _check(
    fused: Callable[[torch.Tensor], torch.Tensor],
    reference: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    params: Sequence[torch.Tensor],
) -> str | None:
    """None if the kernel matches the reference on a small input shaped and laid out like
    ``x`` (two samples), else why not."""
    sample = torch.randn_like(x[:2]).requires_grad_()  # keeps x's memory format
    params = [p for p in params if p.requires_grad]
    tol = TOLERANCE.get(x.dtype, 3e-2)
    # The reference runs in fp32 (or wider) on the same values, outside autocast: the
    # kernels compute in fp32 too, so only their storage rounding may differ from it.
    wide = torch.promote_types(x.dtype, torch.float32)
    exact = sample.detach().to(wide).requires_grad_()
    try:
        with torch.enable_grad():
            got = fused(sample)
            with torch.autocast(x.device.type, enabled=False):
                want = reference(exact)
            # the same output gradient for both (rounded to the kernel's dtype): a summed
            # parameter gradient cancels, and would magnify a difference in the seed alone
            seed = torch.randn_like(got).to(want.dtype)
            got_grads = torch.autograd.grad(got, [sample, *params], seed.to(got.dtype))
            want_grads = torch.autograd.grad(want, [exact, *params], seed, allow_unused=True)
    except Exception as exc:  # a compile error, an unsupported driver, a launch failure
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    names = ["output", "input gradient"] + [
        f"gradient of parameter {i}" for i in range(len(params))
    ]
    pairs = zip(names, [got, *got_grads], [want, *want_grads], strict=True)
    return next((why for n, g, w in pairs if (why := _mismatch(n, g, w, tol))), None)


def passes(
    kernel: str,
    fused: Callable[[torch.Tensor], torch.Tensor],
    reference: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    units: tuple[int, ...],
    params: Sequence[torch.Tensor],
    explicit: bool,
) -> bool:
    """Whether ``fused`` may serve ``x``: its configuration passed its self-check (run now
    if it is new). ``explicit`` (activation.impl=triton): a failure raises instead."""
    name = configuration(kernel, x, units)
    if name not in VERDICTS:
        VERDICTS[name] = _check(fused, reference, x, params)
        if VERDICTS[name] is not None and not explicit:
            log.warning(
                "fused kernel %s failed its self-check (%s); using the PyTorch reference for "
                "it from now on",
                name,
                VERDICTS[name],
            )
    why = VERDICTS[name]
    if why is not None and explicit:
        raise KernelCheckError(
            f"activation.impl=triton: the fused kernel {name} failed its self-check ({why}); "
            "use activation.impl=auto to fall back to the PyTorch reference"
        )
    _USED[name] = "triton" if why is None else f"torch (self-check failed: {why})"
    return why is None


def serve(
    kernel: str,
    impl: str,
    fused: Callable[[torch.Tensor], torch.Tensor],
    reference: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    units: tuple[int, ...],
    params: Sequence[torch.Tensor],
) -> torch.Tensor:
    """An adaptive module's forward: the fused kernel where ``impl`` takes it here and its
    configuration passed its self-check, else the PyTorch reference."""
    if use_triton(impl, x) and passes(kernel, fused, reference, x, units, params, impl == "triton"):
        return fused(x)
    return reference(x)


def begin_run() -> None:
    """Start a new run's record of what served each configuration (verdicts are kept)."""
    _USED.clear()


def impl_used() -> dict[str, str]:
    """Configuration -> ``triton`` or ``torch (self-check failed: ...)`` since begin_run."""
    return dict(_USED)


def outcome(used: dict[str, str]) -> str:
    """One word of IMPL_OUTCOMES for the hparams."""
    torch_only, triton_only, fallback = IMPL_OUTCOMES
    if not used:
        return torch_only
    return triton_only if all(v == "triton" for v in used.values()) else fallback
