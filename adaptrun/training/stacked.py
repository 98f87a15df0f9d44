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
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import torch
from torch import nn
from torch.func import functional_call

from adaptrun.core.errors import describe_error, disk_full
from adaptrun.records.track import Logged, LossWindow, Tracker
from adaptrun.tasks import Task
from adaptrun.tasks.protocol import Trainable
from adaptrun.training.loop import Records
from adaptrun.training.steps import FunctionalStep, Step

T = TypeVar("T")


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
    """The runs' tasks as one, for the loop: batches stacked on a leading run dimension,
    metrics per run. It follows ``adaptrun.training.loop.Trainable``."""

    def __init__(self, tasks: Sequence[Task], models: Sequence[nn.Module]) -> None:
        self.tasks = list(tasks)
        self.models = list(models)  # each run's own model, synced before evaluation
        self.steps_per_epoch = self.tasks[0].steps_per_epoch

    def train_batches(self, epoch: int) -> Iterator[Any]:
        streams = [task.train_batches(epoch) for task in self.tasks]
        for batches in zip(*streams, strict=True):
            yield tuple(torch.stack(parts) for parts in zip(*batches, strict=True))

    def loss(self, model: nn.Module, batch: Any, functional: bool = False) -> torch.Tensor:
        """The runs' losses summed, each run's by its own task on its own slice of the
        stacked parameters: its gradient is each run's own."""
        state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
        total = torch.zeros((), device=batch[0].device)
        for r, (task, own) in enumerate(zip(self.tasks, self.models, strict=True)):
            mine = {f"model.{k}": v[r] for k, v in state.items()}
            args = (tuple(part[r] for part in batch), functional)
            total = total + functional_call(_RunLoss(own, task), mine, args)
        return total

    def evaluate(self, model: nn.Module) -> list[dict[str, float] | Exception]:
        """Each run's metrics, computed by its own task on its own model; where that raised,
        the exception instead: it fails that run alone (StackedTracker.evaluate)."""
        unstack_into(model, self.models)
        pairs = zip(self.tasks, self.models, strict=True)
        return [alone(functools.partial(task.evaluate, model)) for task, model in pairs]


class _RunLoss(nn.Module):
    """A run's task loss as a module, so functional_call can swap in its parameters."""

    def __init__(self, model: nn.Module, task: Task) -> None:
        super().__init__()
        self.model, self.task = model, task

    def forward(self, batch: Any, functional: bool) -> torch.Tensor:
        return self.task.loss(self.model, batch, functional=functional)


def _out_of_room(exc: Exception) -> bool:
    return disk_full(exc) or isinstance(exc, (MemoryError, torch.OutOfMemoryError))


def alone(call: Callable[[], T]) -> T | Exception:
    """``call``'s result, or the exception it raised: what one run of a stack did on its
    own. Out of memory or disk is every run's, and the sweep's: that is raised."""
    try:
        return call()
    except Exception as exc:
        if _out_of_room(exc):
            raise
        return exc


class Casualties(Protocol):
    """What the stacked step asks of the runs' records: who is alive, and to fail one."""

    def alive_at(self, r: int) -> bool: ...

    def fail(self, r: int, error: str) -> None: ...


class Isolating:
    """The stacked step, with a failing run taken out of the stack.

    A run whose own values make an operation raise (an index out of range, a
    factorisation of a singular matrix) raises for the whole vmapped batch. Then each run
    is tried alone: those that raise fail on their own (``records.fail``), their slots
    shadow a healthy run (its parameters, optimizer state and batch, results ignored), and
    the step is taken again, so the others go on exactly as they would have alone. An
    error no run raises alone (out of memory, an operation vmap does not support) is the
    stack's, and raised.
    """

    def __init__(
        self, step: FunctionalStep, optimizer: torch.optim.Optimizer, records: Casualties
    ) -> None:
        self.step, self.optimizer, self.records = step, optimizer, records
        self.runs = int(step.runs or 1)
        self.shadow = list(range(self.runs))  # slot -> the run whose batch it takes

    def __call__(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return self.step(self.shadowed(batch))
        except Exception as exc:
            if not self.isolate(self.shadowed(batch)):
                raise exc from None
            return self.step(self.shadowed(batch))

    def shadowed(self, batch: Any) -> Any:
        """The batch with each shadowing slot given its healthy run's part."""
        if self.shadow == list(range(self.runs)):
            return batch
        index = torch.tensor(self.shadow, device=batch[0].device)
        return tuple(part.index_select(0, index) for part in batch)

    def isolate(self, batch: Any) -> bool:
        """Try each run alone; fail and shadow those that raise. False when that cannot
        help: no run raises alone, or no living run is left to shadow."""
        raised = {}
        for r in range(self.runs):
            outcome = alone(functools.partial(self.step.alone, r, batch))
            if isinstance(outcome, Exception):
                raised[r] = outcome
        for param in self.step.model.parameters():
            param.grad = None
        healthy = [r for r in range(self.runs) if r not in raised and self.records.alive_at(r)]
        if not raised or not healthy:
            return False
        for r, exc in raised.items():
            if self.records.alive_at(r):
                self.records.fail(r, f"{describe_error(exc)} (in the stacked step, alone)")
            self.copy_slot(healthy[0], r)
        return True

    @torch.no_grad()
    def copy_slot(self, source: int, target: int) -> None:
        """``target`` becomes a shadow of ``source``: its parameters, buffers, optimizer
        state and batch, so it raises only if ``source`` does."""
        model = self.step.model
        for tensor in [*model.parameters(), *model.buffers()]:
            tensor[target] = tensor[source]
        for param in model.parameters():
            for value in self.optimizer.state.get(param, {}).values():
                if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == self.runs:
                    value[target] = value[source]
        self.shadow[target] = self.shadow[source]


class StackedTracker:
    """Fans the loop's records out to each run's own tracker.

    A run the loop finds diverged is retired on its own and finished as diverged; a run
    whose own evaluation, figures or records raise fails on its own (so does one the
    stacked step finds raising alone). The stack goes on while any run is alive.
    """

    def __init__(self, trackers: Sequence[Tracker]) -> None:
        self.trackers = list(trackers)
        # each run's rate as a factor of the schedule's (run_rates.own_rates), if they differ
        self.lr_factors = [1.0] * len(self.trackers)
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
        return max((t.last_eval_step for t in self.trackers if t.alive), default=-1)

    def alive_at(self, r: int) -> bool:
        return self.trackers[r].alive

    def fail(self, r: int, error: str) -> None:
        self.trackers[r].fail(error)

    def _each(self, call: Callable[[int, Tracker], Any]) -> dict[int, Any]:
        """``call`` for every living run; one that raises fails that run alone, unless the
        machine is out of memory or disk: that is every run's, and the sweep's."""
        results = {}
        for r, tracker in enumerate(self.trackers):
            if tracker.alive:
                outcome = alone(functools.partial(call, r, tracker))
                if isinstance(outcome, Exception):
                    tracker.fail(describe_error(outcome))
                else:
                    results[r] = outcome
        return results

    def train_step(
        self, step: int, loss: torch.Tensor, penalty: torch.Tensor, lr: float
    ) -> Logged | None:
        for tracker, factor in zip(self.trackers, self.lr_factors, strict=True):
            tracker.at(step, lr * factor)
        self.window.add(loss.detach(), penalty.detach())
        return self.close_window() if step % self.window.every == 0 else None

    def close_window(self) -> Logged | None:
        means = self.window.close()
        if means is None:
            return None
        losses, penalties = means
        logged = self._each(lambda r, t: t.record_window((losses[r], penalties[r]))[0])
        return logged or None

    def retire(self, bad: Logged) -> None:
        for r, means in bad.items():
            self.trackers[r].retire({0: means})

    def evaluate(self, step: int, metrics: Sequence[Mapping[str, float] | Exception]) -> None:
        """Each living run's metrics; a run whose evaluation raised fails here."""

        def record(r: int, tracker: Tracker) -> None:
            mine = metrics[r]
            if isinstance(mine, Exception):
                raise mine
            tracker.evaluate(step, mine)

        self._each(record)

    def end(self, evaluate: Callable[[], Sequence[Mapping[str, float] | Exception]]) -> None:
        per_run = _Shared(evaluate)
        self._each(lambda r, t: t.end(per_run.of(r)))

    def flush(self) -> None:
        self._each(lambda r, t: t.flush())
        for tracker in self.trackers:  # what a run wrote before it ended, on disk too
            if not tracker.alive:
                tracker.flush()

    def state_dict(self) -> dict[str, Any]:
        return {
            "runs": [t.state_dict() for t in self.trackers],
            "window": self.window.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for r, (tracker, run_state) in enumerate(zip(self.trackers, state["runs"], strict=True)):
            # checkpoints before each run kept its own ending held the stack's lists
            kept = {key: state[key][r] for key in ("alive", "failed", "why") if key in state}
            tracker.load_state_dict({**run_state, **kept})
        if "window" in state:  # checkpoints before the stack had one window kept it per run
            device = next(self.trackers[0].model.parameters()).device
            self.window.load_state_dict(state["window"], device)


class _Shared:
    """Evaluate all runs once, however many of their trackers ask."""

    def __init__(self, evaluate: Callable[[], Sequence[Mapping[str, float] | Exception]]) -> None:
        self.evaluate = evaluate
        self.metrics: Sequence[Mapping[str, float] | Exception] | None = None

    def of(self, r: int) -> Callable[[], Mapping[str, float]]:
        def metrics() -> Mapping[str, float]:
            if self.metrics is None:
                self.metrics = self.evaluate()
            mine = self.metrics[r]
            if isinstance(mine, Exception):
                raise mine
            return mine

        return metrics


def stack_size(models: Sequence[nn.Module]) -> int | None:
    """The ``runs`` a step over these runs' models vmaps over: None for a lone run."""
    return len(models) if len(models) > 1 else None


def together(
    models: Sequence[nn.Module], tasks: Sequence[Task], trackers: Sequence[Tracker]
) -> tuple[nn.Module, Trainable, Records]:
    """What the loop trains: a lone run's own model, task and tracker, or the runs as one
    stacked model, task and fan-out of their trackers."""
    if len(models) == 1:
        return models[0], tasks[0], trackers[0]
    return stack_models(models), StackedTask(tasks, models), StackedTracker(trackers)


def isolating(step: Step, optimizer: torch.optim.Optimizer, records: Records) -> Step:
    """A stacked step that takes a run failing on its own out of the stack (Isolating);
    a lone run's step as it is."""
    if isinstance(step, FunctionalStep) and isinstance(records, StackedTracker):
        return Isolating(step, optimizer, records)
    return step
