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
from typing import Any, Protocol

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from adaptrun.core.errors import describe_error, disk_full
from adaptrun.records.track import Logged, LossWindow, Tracker
from adaptrun.training.steps import Objective


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
        self.compiled_step_pays = first.compiled_step_pays

    def train_batches(self, epoch: int) -> Iterator[Any]:
        streams = [task.train_batches(epoch) for task in self.tasks]
        for batches in zip(*streams, strict=True):
            yield tuple(torch.stack(parts) for parts in zip(*batches, strict=True))

    def evaluate(self, stacked: nn.Module) -> list[dict[str, float] | Exception]:
        """Each run's metrics, computed by its own task on its own model; where that raised,
        the exception instead: it fails that run alone (StackedTracker.evaluate)."""
        unstack_into(stacked, self.models)
        pairs = zip(self.tasks, self.models, strict=True)
        return [_caught(task.evaluate, model) for task, model in pairs]


def _out_of_room(exc: Exception) -> bool:
    return disk_full(exc) or isinstance(exc, (MemoryError, torch.OutOfMemoryError))


def _caught(evaluate: Callable[[nn.Module], dict[str, float]], model: nn.Module) -> Any:
    try:
        return evaluate(model)
    except Exception as exc:
        if _out_of_room(exc):
            raise
        return exc


class Casualties(Protocol):
    """What the stacked step asks of the runs' records: who is alive, and to fail one."""

    def alive_at(self, r: int) -> bool: ...

    def fail(self, r: int, error: str) -> None: ...


class StackedStep:
    """Forward all runs at once (vmap over the stacked parameters and batches), then one
    backward of the summed losses; returns each run's loss and penalty, shape (R,).
    ``functional``: the task's loss takes its input derivatives through torch.func (which
    vmap needs; plain autograd.grad cannot run under it).

    A run whose own values make an operation raise (an index out of range, a
    factorisation of a singular matrix) raises for the whole vmapped batch. Then each run
    is tried alone: those that raise fail on their own (``records.fail``), their slots
    shadow a healthy run (its parameters, optimizer state and batch, results ignored), and
    the step is taken again, so the others go on exactly as they would have alone. An
    error no run raises alone (out of memory, an operation vmap does not support) is the
    stack's, and raised; so is every error without ``records`` (the benchmarks).

    ``compiled``: each run's gradient as vmap over torch.func's grad, the whole of it one
    compiled function (tasks whose loss runs under torch.func); the same gradients as the
    backward of the summed losses.
    """

    def __init__(
        self,
        stacked: nn.Module,
        template: nn.Module,
        task: StackedTask,
        optimizer: torch.optim.Optimizer | None = None,
        records: Casualties | None = None,
        precision: str = "fp32",
        functional: bool = False,
        compiled: bool = False,
    ) -> None:
        self.stacked, self.optimizer, self.records = stacked, optimizer, records
        self.objective = Objective(template, task.tasks[0], functional)
        self.runs = len(task.tasks)
        device = next(stacked.parameters()).device
        self.autocast = torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")
        self.shadow = list(range(self.runs))  # slot -> the run whose batch it takes
        self.compiled = None
        if compiled:

            def one(params: dict, buffers: dict, batch: Any) -> tuple[torch.Tensor, tuple]:
                total, loss, penalty = self.one_run({**params, **buffers}, batch)
                return total, (loss, penalty)

            self.compiled = torch.compile(vmap(grad_and_value(one, has_aux=True)))

    def one_run(self, state: dict[str, torch.Tensor], batch: Any) -> tuple[torch.Tensor, ...]:
        named = {f"model.{k}": v for k, v in state.items()}
        total, (loss, penalty) = functional_call(self.objective, named, (batch,))
        return total, loss, penalty

    def state(self) -> dict[str, torch.Tensor]:
        return {**dict(self.stacked.named_parameters()), **dict(self.stacked.named_buffers())}

    def __call__(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return self.all_runs(batch)
        except Exception as exc:
            if not self.isolate(batch):
                raise exc from None
            return self.all_runs(batch)

    def shadowed(self, batch: Any) -> Any:
        """The batch with each shadowing slot given its healthy run's part."""
        if self.shadow == list(range(self.runs)):
            return batch
        index = torch.tensor(self.shadow, device=batch[0].device)
        return tuple(part.index_select(0, index) for part in batch)

    def all_runs(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.shadowed(batch)
        if self.compiled is not None:
            params = dict(self.stacked.named_parameters())
            detached = {name: p.detach() for name, p in params.items()}
            with self.autocast:
                grads, (_, (losses, penalties)) = self.compiled(
                    detached, dict(self.stacked.named_buffers()), batch
                )
            for name, param in params.items():
                if param.requires_grad:
                    param.grad = grads[name]
            return losses, penalties
        with self.autocast:
            totals, losses, penalties = vmap(self.one_run)(self.state(), batch)
        totals.sum().backward()
        return losses, penalties

    def isolate(self, batch: Any) -> bool:
        """Try each run alone; fail and shadow those that raise. False when that cannot
        help: no run raises alone, or no living run is left to shadow."""
        if self.records is None:
            return False
        batch, raised = self.shadowed(batch), {}
        for r in range(self.runs):
            mine = {k: v[r] for k, v in self.state().items()}
            try:
                with self.autocast:
                    total, _, _ = self.one_run(mine, tuple(part[r] for part in batch))
                total.backward()
            except Exception as exc:
                raised[r] = exc
        for param in self.stacked.parameters():
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
        for tensor in self.state().values():
            tensor[target] = tensor[source]
        state = self.optimizer.state if self.optimizer is not None else {}
        for param in self.stacked.parameters():
            for value in state.get(param, {}).values():
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
                try:
                    results[r] = call(r, tracker)
                except Exception as exc:
                    if _out_of_room(exc):
                        raise
                    tracker.fail(describe_error(exc))
        return results

    def train_step(
        self, step: int, loss: torch.Tensor, penalty: torch.Tensor, lr: float
    ) -> Logged | None:
        for tracker in self.trackers:
            if tracker.alive:  # a run that ended keeps the step it ended at
                tracker.step, tracker.lr = step, lr
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
            if isinstance(metrics[r], Exception):
                raise metrics[r]
            tracker.evaluate(step, metrics[r])

        self._each(record)

    def end(self, evaluate: Callable[[], Sequence[Mapping[str, float] | Exception]]) -> None:
        per_run = _Shared(evaluate)
        self._each(lambda r, t: t.end(per_run.of(r)))

    def flush(self) -> None:
        self._each(lambda r, t: t.flush())
        for tracker in self.trackers:  # what a run wrote before it ended, on disk too
            if not tracker.alive:
                tracker.flush()

    def status_of(self, r: int, status: str) -> str:
        """A run that diverged or failed on its own says so, whatever the stack did."""
        tracker = self.trackers[r]
        if tracker.alive:
            return status
        return "failed" if tracker.failed else "diverged"

    def state_dict(self) -> dict[str, Any]:
        return {
            "alive": [t.alive for t in self.trackers],
            "failed": [t.failed for t in self.trackers],
            "why": [t.why for t in self.trackers],
            "runs": [t.state_dict() for t in self.trackers],
            "window": self.window.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        runs = len(self.trackers)
        for r, (tracker, run_state) in enumerate(zip(self.trackers, state["runs"], strict=True)):
            tracker.alive = state["alive"][r]
            tracker.failed = state.get("failed", [False] * runs)[r]  # older checkpoints:
            tracker.why = state.get("why", [None] * runs)[r]  # no failed runs, no reasons
            tracker.load_state_dict(run_state)
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
            if isinstance(self.metrics[r], Exception):
                raise self.metrics[r]
            return self.metrics[r]

        return metrics
