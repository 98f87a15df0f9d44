"""Each run of a stack its own learning rate and weight decay under one optimizer.

A stack's runs share one optimizer over parameters with a leading run dimension, and a
torch optimizer takes one rate per parameter group, not one per slice. The rate is made
per run around the optimizer's own step (its step hooks), which stays fused:

- the groups' rates become relative (1 for the main group, the backbone's multiplier for
  a transfer model's), so the optimizer computes each element's whole update at rate 1
  (times the schedule's factor); after the step, each run's slice of that update is
  scaled by the run's rate. Adam's and SGD's updates are linear in the rate, so this is
  the update at the run's rate, to float rounding (the update is taken as a difference
  of parameters whose error is a rounding of the parameter, times the run's rate);
- weight decay, where it differs, is added to each run's gradient (wd_r * p) before the
  step, with the groups' own set to 0: the L2 term Adam and SGD add themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def own_rates(
    optimizer: torch.optim.Optimizer, rates: Sequence[float], decays: Sequence[float]
) -> list[float] | None:
    """Install the per-run rates and decays on ``optimizer`` (before its schedule is
    built: the schedule takes the groups' rates as its base); the factor each run's
    logged rate is the schedule's times, or None when every run has the same ones."""
    lr_differs = len(set(rates)) > 1
    decay_differs = len(set(decays)) > 1
    if not lr_differs and not decay_differs:
        return None
    runs = len(rates)
    lr = torch.tensor([float(r) for r in rates])
    wd = torch.tensor([float(d) for d in decays])
    params = [p for group in optimizer.param_groups for p in group["params"]]
    decayed = [p for g in optimizer.param_groups if g.get("decayed") for p in g["params"]]
    if lr_differs:
        reference = float(optimizer.defaults["lr"])  # the job's rate: groups hold multiples
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] / reference
    if decay_differs:
        for group in optimizer.param_groups:
            if group.get("decayed"):
                group["weight_decay"] = 0.0
    before: list[torch.Tensor] = []

    def per_run(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.to(like.device, like.dtype).view(runs, *[1] * (like.dim() - 1))

    @torch.no_grad()
    def pre(opt: Any, args: Any, kwargs: Any) -> None:
        if decay_differs:
            for p in decayed:
                if p.grad is not None:
                    p.grad.add_(per_run(wd, p) * p)
        if lr_differs:
            before[:] = [p.detach().clone() for p in params]

    @torch.no_grad()
    def post(opt: Any, args: Any, kwargs: Any) -> None:
        if lr_differs:
            for p, old in zip(params, before, strict=True):
                p.sub_(old).mul_(per_run(lr, p)).add_(old)
            before.clear()

    optimizer.register_step_pre_hook(pre)
    optimizer.register_step_post_hook(post)
    return [float(r) for r in rates] if lr_differs else [1.0] * runs
