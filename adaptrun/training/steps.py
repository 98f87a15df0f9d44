"""One optimisation step's forward and backward: the plain eager reference, and fast paths.

A step takes a batch, leaves the gradient of task loss + model_penalty in each
parameter's ``.grad`` and returns the two (detached) terms for logging.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad_and_value

from adaptrun.activations import model_penalty
from adaptrun.tasks import Task
from adaptrun.training.optim import OPTIMIZERS

Step = Callable[[Any], tuple[torch.Tensor, torch.Tensor]]


def eager_step(model: nn.Module, task: Task, precision: str = "fp32") -> Step:
    """Forward under optional bf16 autocast, then ``backward()``: the reference."""
    device = next(model.parameters()).device

    def step(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16"):
            loss = task.loss(model, batch)
            penalty = model_penalty(model)
        (loss + penalty).backward()
        return loss.detach(), penalty.detach()

    return step


class Objective(nn.Module):
    """Task loss + penalty as one module, so functional_call swaps every parameter at once
    (the slopes read by model_penalty included). ``functional``: the task's loss takes its
    input derivatives through torch.func, which is what makes it safe under grad/vmap."""

    def __init__(self, model: nn.Module, task: Task, functional: bool = False) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.functional = functional

    def forward(self, batch: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        loss = self.task.loss(self.model, batch, functional=self.functional)
        penalty = model_penalty(self.model)
        return loss + penalty, (loss.detach(), penalty.detach())


def compiled_functional_step(model: nn.Module, task: Task) -> Step:
    """The whole step (input derivatives, loss, parameter gradients) as one compiled
    function through torch.func, for full-batch tasks whose loss supports ``functional``."""
    objective = Objective(model, task, functional=True)
    names = [name for name, _ in objective.named_parameters()]

    def total(params: dict[str, torch.Tensor], batch: Any) -> Any:
        return functional_call(objective, params, (batch,))

    compiled = torch.compile(grad_and_value(total, has_aux=True))

    def step(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        params = dict(objective.named_parameters())
        grads, (_, (loss, penalty)) = compiled({n: params[n].detach() for n in names}, batch)
        for name in names:
            params[name].grad = grads[name]
        return loss, penalty

    return step


def resolve_compile(
    setting: bool | str, task: Task, device: torch.device, functional_loss: bool
) -> bool:
    """``trainer.compile``: true or false as given; ``auto`` compiles only the whole-step
    path on CPU, and only for tasks whose step the benchmark shows faster compiled
    (``task.compiled_step_pays``). CUDA stays eager until it has been measured there."""
    if setting != "auto":
        return bool(setting)
    return device.type == "cpu" and functional_loss and task.compiled_step_pays


def build_step(
    model: nn.Module,
    task: Task,
    compile: bool,
    precision: str,
    optimizer: Any = None,
    functional_loss: bool = False,
) -> Step:
    """An optimizer that owns its step (MOLF) gives the step. ``compile``: the compiled
    functional step where the task's loss runs under torch.func (``functional_loss``:
    regression, physics-informed), else a torch.compile'd model inside the eager step."""
    own = OPTIMIZERS[optimizer["name"]].step if optimizer is not None else None
    if own is not None:
        return own(model, task, optimizer)
    if compile and functional_loss:
        return compiled_functional_step(model, task)
    return eager_step(torch.compile(model) if compile else model, task, precision)
