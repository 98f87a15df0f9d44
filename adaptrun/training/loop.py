"""The one training loop. It sees a task, a step function and a tracker, nothing more."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from itertools import islice
from typing import Any, Protocol

import torch
from torch import nn

from adaptrun.activations import model_penalty
from adaptrun.core.interrupt import STOP
from adaptrun.records.checkpoint import Checkpoints, Position
from adaptrun.records.track import Logged
from adaptrun.tasks.protocol import Trainable
from adaptrun.training.steps import Step


class Records(Protocol):
    """What the loop tells a run's records (a Tracker, or a StackedTracker of several)."""

    @property
    def step(self) -> int: ...

    @property
    def alive(self) -> bool: ...

    @property
    def last_eval_step(self) -> int: ...

    def train_step(
        self, step: int, loss: torch.Tensor, penalty: torch.Tensor, lr: float
    ) -> Logged | None: ...

    def close_window(self) -> Logged | None: ...

    def retire(self, bad: Logged) -> None: ...

    def evaluate(self, step: int, metrics: Any) -> None: ...

    def end(self, evaluate: Callable[[], Any]) -> None: ...

    def flush(self) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...


def diverged(records: Records, logged: Logged | None) -> bool:
    """A run whose logged loss or penalty is not finite has diverged and is retired; True
    once no run is left."""
    if logged:
        bad = {r: means for r, means in logged.items() if not all(map(math.isfinite, means))}
        if bad:
            records.retire(bad)
    return not records.alive


@dataclasses.dataclass(frozen=True)
class Loop:
    """How long to train and when to evaluate; epochs or max_steps, whichever first."""

    epochs: int
    max_steps: int | None = None
    eval_every: int | None = None  # steps
    eval_every_epochs: int = 1  # 0: only at eval_every steps and at the end
    precision: str = "fp32"
    lbfgs_steps: int = 0  # full-batch L-BFGS iterations after the first optimizer

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Loop:
        return cls(
            int(cfg["epochs"]),
            cfg["max_steps"],
            cfg["eval_every"],
            int(cfg["eval_every_epochs"]),
            cfg["precision"],
            int(cfg["lbfgs_steps"]),
        )

    def total_steps(self, steps_per_epoch: int) -> int:
        total = self.epochs * steps_per_epoch
        return min(total, self.max_steps) if self.max_steps else total

    def eval_due(self, step: int) -> bool:
        return self.eval_every is not None and self.eval_every > 0 and step % self.eval_every == 0


def train(
    model: nn.Module,
    task: Trainable,
    step_fn: Step,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    tracker: Records,
    loop: Loop,
    saver: Checkpoints,
    start: Position,
) -> str:
    """Train until the step budget is spent, from ``start`` (a resumed checkpoint) on.

    Returns ``completed``, ``diverged``, or ``interrupted`` when a stop signal came
    (after saving a checkpoint at that step boundary).
    """
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=loop.precision == "bf16")

    def evaluate() -> Any:
        with autocast:
            return task.evaluate(model)

    def stop_after(position: Position, due: bool) -> bool:
        """Checkpoint if due or asked to stop; True when the run must stop here."""
        if due or STOP:
            saver.save(position)
        return bool(STOP)

    total, step = loop.total_steps(task.steps_per_epoch), start.step
    model.train()
    for epoch in range(start.epoch, loop.epochs):
        skip = start.batch if epoch == start.epoch else 0
        for done, batch in enumerate(islice(task.train_batches(epoch), skip, None), skip + 1):
            if step >= total:
                break
            optimizer.zero_grad(set_to_none=True)
            loss, penalty = step_fn(batch)
            optimizer.step()
            schedule.step()
            step += 1
            if diverged(
                tracker, tracker.train_step(step, loss, penalty, float(schedule.get_last_lr()[0]))
            ):
                return "diverged"
            if loop.eval_due(step):
                tracker.evaluate(step, evaluate())
            if step < total and stop_after(Position(step, epoch, done), saver.due(step)):
                return "interrupted"
        # an epoch's last, partial log window is logged at its end; a full-batch epoch is
        # one step, whose loss train_step logs every trainer.log_every steps
        if task.steps_per_epoch > 1 and diverged(tracker, tracker.close_window()):
            return "diverged"
        at_epoch_end = loop.eval_every_epochs and (epoch + 1) % loop.eval_every_epochs == 0
        if at_epoch_end and tracker.last_eval_step != step:
            tracker.evaluate(step, evaluate())
        # at the end only the L-BFGS phase can still be resumed: it starts from this save
        due = saver.due_at_epoch_end(epoch) or step >= total
        if (step < total or loop.lbfgs_steps) and stop_after(Position(step, epoch + 1, 0), due):
            return "interrupted"
        if step >= total:
            break
    if loop.lbfgs_steps:
        status = lbfgs(model, task, tracker, loop, step, evaluate)
        if status != "completed":
            return status
    if diverged(tracker, tracker.close_window()):
        return "diverged"
    tracker.end(evaluate)
    return "completed"


def lbfgs(
    model: nn.Module,
    task: Trainable,
    tracker: Records,
    loop: Loop,
    step: int,
    evaluate: Callable[[], Any],
) -> str:
    """Full-batch L-BFGS with a strong-Wolfe line search, one logged step per iteration.

    Not checkpointed within: a run stopped here resumes at the start of this phase.

    max_eval must be set: with max_iter=1 PyTorch's default (max_iter * 5 // 4 = 1)
    leaves the line search a single evaluation and the step stalls at t = 0.
    """
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        lr=1.0,
        max_iter=1,
        max_eval=25,
        history_size=50,
        line_search_fn="strong_wolfe",
    )
    batch = next(iter(task.train_batches(0)))

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        return task.loss(model, batch), model_penalty(model)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss, penalty = objective()
        total = loss + penalty
        total.backward()
        return total

    for _ in range(loop.lbfgs_steps):
        optimizer.step(closure)
        step += 1
        loss, penalty = objective()  # at the accepted point, not the line search's last trial
        if diverged(tracker, tracker.train_step(step, loss.detach(), penalty.detach(), lr=1.0)):
            return "diverged"
        if loop.eval_due(step):
            tracker.evaluate(step, evaluate())
        if STOP:  # resumes from the checkpoint taken before this phase
            return "interrupted"
    return "completed"
