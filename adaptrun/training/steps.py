"""One optimisation step: the same function for a run and for a stack of runs.

A step takes a batch, leaves the gradient of task loss + model_penalty in each trainable
parameter's ``.grad`` and returns the two (detached) terms for logging: scalars for one
run, shape (R,) for R stacked runs (their batches and parameters carry a leading run
dimension). Stacking only wraps the one run's loss in ``vmap``; compiling only wraps
the same function in ``torch.compile``; bf16 autocast covers every variant alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from adaptrun.activations import model_penalty
from adaptrun.tasks import Task
from adaptrun.training.optim import OPTIMIZERS

Step = Callable[[Any], tuple[torch.Tensor, torch.Tensor]]
State = dict[str, torch.Tensor]


class Loss(Protocol):
    """What a step asks of a task (``adaptrun.tasks.Task`` has it): its loss on a batch."""

    def loss(self, model: nn.Module, batch: Any, functional: bool = False) -> torch.Tensor: ...


class Objective(nn.Module):
    """Task loss + penalty as one module, so functional_call swaps every parameter at once
    (the slopes read by model_penalty included). ``functional``: the task's loss takes its
    input derivatives through torch.func, which is what makes it safe under grad/vmap."""

    def __init__(self, model: nn.Module, task: Loss, functional: bool = False) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.functional = functional

    def forward(self, batch: Any) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        loss = self.task.loss(self.model, batch, functional=self.functional)
        penalty = model_penalty(self.model)
        return loss + penalty, (loss.detach(), penalty.detach())


class FunctionalStep:
    """Forward, loss and gradients of one run's objective, as a function of its state.

    ``model``: the module trained (a run's own, or the runs stacked by ``stack_models``);
    ``template``: one run's model, whose structure the function follows (default: the
    model itself). ``runs``: None for one run, R for a stack: the function is vmapped
    over the leading run dimension of the state and the batch. Each run's loss depends
    only on its own slice, so the backward of the summed losses gives each its own
    gradient. ``compiled`` (tasks whose loss runs under torch.func): the gradient as
    torch.func's grad, vmapped for a stack, the whole of it one compiled function;
    otherwise the backward of the (vmapped) forward, with ``compile_model`` compiling the
    model inside it. ``precision`` ``bf16``: the forward under bf16 autocast, every path.
    """

    def __init__(
        self,
        model: nn.Module,
        task: Loss,
        runs: int | None = None,
        template: nn.Module | None = None,
        precision: str = "fp32",
        functional: bool = False,
        compiled: bool = False,
        compile_model: bool = False,
    ) -> None:
        self.model, self.runs = model, runs
        transformed = runs is not None or compiled  # what torch.func wraps must be functional
        inner = template if template is not None else model
        if compile_model and runs is None:
            inner = torch.compile(inner)  # type: ignore[assignment]
        self.objective = Objective(inner, task, functional and transformed)
        device = next(model.parameters()).device
        self.autocast = torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")
        self.gradient: Callable[..., Any] | None = None
        if compiled:
            gradient = grad_and_value(self.total, has_aux=True)
            self.gradient = torch.compile(gradient if runs is None else vmap(gradient))

    def total(
        self, trainable: State, rest: State, batch: Any
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One run's objective at the given parameters and buffers: the function that
        vmap, grad and compile transform."""
        named = {f"model.{k}": v for k, v in {**trainable, **rest}.items()}
        return functional_call(self.objective, named, (batch,))

    def split(self) -> tuple[State, State]:
        """The model's state: (trainable parameters, frozen parameters and buffers)."""
        trainable: State = {}
        rest: State = dict(self.model.named_buffers())
        for name, param in self.model.named_parameters():
            (trainable if param.requires_grad else rest)[name] = param
        return trainable, rest

    def __call__(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        trainable, rest = self.split()
        if self.gradient is not None:
            detached = {name: p.detach() for name, p in trainable.items()}
            with self.autocast:
                grads, (_, (loss, penalty)) = self.gradient(detached, rest, batch)
            for name, param in trainable.items():
                param.grad = grads[name]
            return loss, penalty
        with self.autocast:
            if self.runs is None:  # the model's own parameters: no swap needed
                total, (loss, penalty) = self.objective(batch)
            else:
                total, (loss, penalty) = vmap(self.total)(trainable, rest, batch)
        total.sum().backward()
        return loss, penalty

    def alone(self, r: int, batch: Any) -> None:
        """Run ``r`` of a stack on its own (forward and backward of its slice): what tells
        which run makes a failing stacked step raise."""
        trainable, rest = self.split()

        def mine(state: State) -> State:
            return {k: v[r] for k, v in state.items()}

        with self.autocast:
            total, _ = self.total(mine(trainable), mine(rest), tuple(part[r] for part in batch))
        total.backward()


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
    runs: int | None = None,
    template: nn.Module | None = None,
) -> Step:
    """An optimizer that owns its step (MOLF) gives the step; otherwise the functional
    step. ``compile``: the whole step compiled where the task's loss runs under torch.func
    (``functional_loss``: regression, physics-informed), else the model compiled inside
    the eager step. ``runs``, ``template``: a stack of runs (see FunctionalStep)."""
    own = OPTIMIZERS[optimizer["name"]].step if optimizer is not None else None
    if own is not None:
        return own(model, task, optimizer)
    whole = compile and functional_loss
    return FunctionalStep(
        model, task, runs, template, precision, functional_loss, whole, compile and not whole
    )
