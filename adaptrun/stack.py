"""Stacked runs: several seeds of one small model trained in one process with torch.func.

Small models (MLPs, physics-informed networks) leave a GPU mostly idle; training R
seeds as one model whose parameters carry a leading run dimension, with the forward
pass vmapped over it, keeps it busy. Each run still gets its own folder, tracker,
metrics.json and TensorBoard events: the same numbers a separate run writes, up to
float rounding (a batched matrix product sums in another order).

Why this is exact: each run's loss depends only on its own slice of the stacked
parameters, so the gradient of the summed losses is each run's own gradient; Adam and
SGD (momentum, weight decay) act elementwise, so one optimizer over the stacked
tensors takes each run's own step; the schedule is the same for every run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from adaptrun.activations import Capabilities
from adaptrun.errors import require
from adaptrun.models.registry import ModelCapabilities
from adaptrun.stacking import PLAN_KEY
from adaptrun.steps import Objective
from adaptrun.track import Logged, LossWindow, Tracker


def check_stack(cfg: Mapping[str, Any], model: ModelCapabilities, activation: Capabilities) -> None:
    """trainer.stack > 1 needs what stacking can reproduce exactly: a model and activation
    whose capabilities say ``stackable``, an elementwise optimizer, no L-BFGS phase."""
    stack = cfg["trainer"]["stack"]
    require(
        isinstance(stack, int) and not isinstance(stack, bool) and stack >= 1,
        "trainer.stack",
        f"must be an integer >= 1 (got {stack!r})",
    )
    planned = cfg.get(PLAN_KEY)  # a job of hydra/sweeper=stacked: its runs, stacked
    if planned is not None:
        require(
            stack == 1,
            "trainer.stack",
            "hydra/sweeper=stacked stacks the sweep's runs itself; use trainer.stack=1",
        )
        stack = len(planned)
    if stack == 1:
        return
    require(
        model.stackable,
        "trainer.stack",
        f"stacks mlp, mlp1, vgg and lenet without dropout (no BatchNorm, no dropout); "
        f"got model={cfg['model']['name']}",
    )
    require(
        activation.stackable,
        "trainer.stack",
        f"activation {cfg['activation']['name']} says it cannot be stacked; use trainer.stack=1",
    )
    require(
        cfg["optimizer"]["name"] in ("adam", "sgd"),
        "trainer.stack",
        "stacks adam and sgd runs (elementwise updates); use trainer.stack=1 with molf",
    )
    require(
        cfg["trainer"]["lbfgs_steps"] == 0,
        "trainer.stack",
        "L-BFGS's line search would couple the stacked runs; use trainer.stack=1",
    )
    require(
        cfg["trainer"]["compile"] is not True,
        "trainer.stack",
        "stacked runs are not compiled yet; use trainer.compile=auto or false",
    )


def stack_models(models: Sequence[nn.Module]) -> nn.Module:
    """A copy of ``models[0]`` whose every parameter is the stack of the runs' own.

    Parameters shared between modules (the global slope) stay shared. The module tree is
    kept, so the optimizer groups the stacked parameters exactly as it groups one run's.
    """
    stacked = copy.deepcopy(models[0])
    names = dict(stacked.named_parameters())  # shared parameters appear once
    per_run = [dict(m.named_parameters()) for m in models]
    replace = {
        id(param): nn.Parameter(
            torch.stack([run[name].detach() for run in per_run]),
            requires_grad=param.requires_grad,
        )
        for name, param in names.items()
    }
    for module in stacked.modules():
        for key, param in module._parameters.items():
            if param is not None:
                module._parameters[key] = replace[id(param)]
    # buffers too: what a run's config sets per run (a slope activation's n and recovery
    # weight) rides along under vmap like its parameters
    per_run_buffers = [dict(m.named_buffers()) for m in models]
    for name, _ in list(stacked.named_buffers()):
        owner, _, key = name.rpartition(".")
        module = stacked.get_submodule(owner) if owner else stacked
        module._buffers[key] = torch.stack([run[name] for run in per_run_buffers])
    return stacked


def unstack_into(stacked: nn.Module, models: Sequence[nn.Module]) -> None:
    """Copy each run's slice of the stacked parameters into its own model."""
    with torch.no_grad():
        stacked_params = dict(stacked.named_parameters())
        for r, model in enumerate(models):
            for name, param in model.named_parameters():
                param.copy_(stacked_params[name][r])


class StackedTask:
    """The runs' tasks as one: batches stacked on a leading run dimension."""

    def __init__(self, tasks: Sequence[Any], models: Sequence[nn.Module]) -> None:
        self.tasks = list(tasks)
        self.models = list(models)  # each run's own model, synced before evaluation
        first = self.tasks[0]
        self.steps_per_epoch = first.steps_per_epoch
        self.goals = first.goals

    def train_batches(self, epoch: int) -> Iterator[Any]:
        streams = [task.train_batches(epoch) for task in self.tasks]
        for batches in zip(*streams, strict=True):
            yield tuple(torch.stack(parts) for parts in zip(*batches, strict=True))

    def evaluate(self, stacked: nn.Module) -> list[dict[str, float]]:
        """Each run's metrics, computed by its own task on its own model."""
        unstack_into(stacked, self.models)
        return [task.evaluate(model) for task, model in zip(self.tasks, self.models, strict=True)]


def stacked_step(
    stacked: nn.Module,
    template: nn.Module,
    task: StackedTask,
    precision: str = "fp32",
    functional: bool = False,
) -> Callable[[Any], tuple[torch.Tensor, torch.Tensor]]:
    """Forward all runs at once (vmap over the stacked parameters and batches), then one
    backward of the summed losses; returns each run's loss and penalty, shape (R,).
    ``functional``: the task's loss takes its input derivatives through torch.func (which
    vmap needs; plain autograd.grad cannot run under it)."""
    objective = Objective(template, task.tasks[0], functional)
    device = next(stacked.parameters()).device

    def one_run(params: dict[str, torch.Tensor], batch: Any) -> tuple[torch.Tensor, ...]:
        named = {f"model.{k}": v for k, v in params.items()}
        total, (loss, penalty) = functional_call(objective, named, (batch,))
        return total, loss, penalty

    def step(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        state = {**dict(stacked.named_parameters()), **dict(stacked.named_buffers())}
        with torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16"):
            totals, losses, penalties = vmap(one_run)(state, batch)
        totals.sum().backward()
        return losses, penalties

    return step


class StackedTracker:
    """Fans the loop's records out to each run's own tracker.

    A run the loop finds diverged is retired on its own and finished as diverged; the
    stack goes on while any run is alive.
    """

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        self.trackers = list(trackers)
        # the runs' losses summed as one (R,) tensor and read back at once: one device
        # sync per window for the stack, not two per run
        self.window = LossWindow(self.trackers[0].window.every)

    @property
    def alive(self) -> bool:
        return any(t.alive for t in self.trackers)

    @property
    def step(self) -> int:
        return self.trackers[0].step

    @property
    def last_eval_step(self) -> int:
        return max(t.last_eval_step for t in self.trackers if t.alive)

    def _living(self) -> list[tuple[int, Tracker]]:
        return [(r, t) for r, t in enumerate(self.trackers) if t.alive]

    def _gather(self, each: Callable[[int, Tracker], Logged | None]) -> Logged | None:
        logged = {r: got[0] for r, t in self._living() if (got := each(r, t))}
        return logged or None

    def train_step(
        self, step: int, loss: torch.Tensor, penalty: torch.Tensor, lr: float
    ) -> Logged | None:
        for _, tracker in self._living():
            tracker.step, tracker.lr = step, lr
        self.window.add(loss.detach(), penalty.detach())
        return self.close_window() if step % self.window.every == 0 else None

    def close_window(self) -> Logged | None:
        means = self.window.close()
        if means is None:
            return None
        losses, penalties = means
        return self._gather(lambda r, t: t.record_window((losses[r], penalties[r])))

    def retire(self, bad: Logged) -> None:
        for r, means in bad.items():
            self.trackers[r].retire({0: means})

    def evaluate(self, step: int, metrics: Sequence[Mapping[str, float]]) -> None:
        for r, tracker in self._living():
            tracker.evaluate(step, metrics[r])

    def end(self, evaluate: Callable[[], Sequence[Mapping[str, float]]]) -> None:
        per_run = _Shared(evaluate)
        for r, tracker in self._living():
            tracker.end(per_run.of(r))

    def flush(self) -> None:
        for tracker in self.trackers:
            tracker.flush()

    def status_of(self, r: int, status: str) -> str:
        """A run that diverged on its own says so, whatever the stack as a whole did."""
        return status if self.trackers[r].alive else "diverged"

    def state_dict(self) -> dict[str, Any]:
        return {
            "alive": [t.alive for t in self.trackers],
            "runs": [t.state_dict() for t in self.trackers],
            "window": self.window.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for tracker, alive, run_state in zip(
            self.trackers, state["alive"], state["runs"], strict=True
        ):
            tracker.alive = alive
            tracker.load_state_dict(run_state)
        if "window" in state:  # checkpoints before the stack had one window kept it per run
            device = next(self.trackers[0].model.parameters()).device
            self.window.load_state_dict(state["window"], device)


class _Shared:
    """Evaluate all runs once, however many of their trackers ask."""

    def __init__(self, evaluate: Callable[[], Sequence[Mapping[str, float]]]) -> None:
        self.evaluate = evaluate
        self.metrics: Sequence[Mapping[str, float]] | None = None

    def of(self, r: int) -> Callable[[], Mapping[str, float]]:
        def metrics() -> Mapping[str, float]:
            if self.metrics is None:
                self.metrics = self.evaluate()
            return self.metrics[r]

        return metrics
