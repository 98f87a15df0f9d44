"""The one training loop. It sees a task, a model and the model's penalty, nothing more."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from adaptrun.activations import model_penalty
from adaptrun.track import Tracker

PRECISIONS = ("fp32", "bf16")


@dataclasses.dataclass(frozen=True)
class Loop:
    """How long to train and how often to evaluate; epochs or max_steps, whichever first."""

    epochs: int
    max_steps: int | None = None
    eval_every: int | None = None
    precision: str = "fp32"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Loop:
        return cls(int(cfg["epochs"]), cfg["max_steps"], cfg["eval_every"], cfg["precision"])

    def total_steps(self, steps_per_epoch: int) -> int:
        total = self.epochs * steps_per_epoch
        return min(total, self.max_steps) if self.max_steps else total


def train(
    model: nn.Module,
    task: Any,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    tracker: Tracker,
    loop: Loop,
) -> str:
    """Train until the step budget is spent; returns ``completed`` or ``diverged``."""
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=loop.precision == "bf16")
    total = loop.total_steps(task.steps_per_epoch)

    def evaluate() -> dict[str, float]:
        with autocast:
            return task.evaluate(model)

    step = 0
    model.train()
    for epoch in range(loop.epochs):
        for batch in task.train_batches(epoch):
            with autocast:
                loss = task.loss(model, batch)
                penalty = model_penalty(model)
            optimizer.zero_grad(set_to_none=True)
            (loss + penalty).backward()
            optimizer.step()
            schedule.step()
            step += 1
            if not tracker.train_step(
                step, loss.detach(), penalty.detach(), schedule.get_last_lr()[0]
            ):
                return "diverged"
            if loop.eval_every and step % loop.eval_every == 0:
                tracker.evaluate(step, evaluate())
            if step >= total:
                break
        if not tracker.end_epoch(step, evaluate):
            return "diverged"
        if step >= total:
            break
    return "completed"
