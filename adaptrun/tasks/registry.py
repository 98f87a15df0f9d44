"""The task registry: each task module registers its typed config, its checks, its
capabilities, the kind of dataset it takes and how to build it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch

from adaptrun.core.registry import Registry
from adaptrun.tasks.protocol import Task


@dataclasses.dataclass(frozen=True)
class TaskCapabilities:
    """images: image inputs (augmentation; bf16 and channels-last on CUDA).
    full_batch: every step sees all the training data (so an L-BFGS phase is possible).
    input_derivatives: the loss differentiates the network with respect to its inputs,
        twice: fused kernels, whose backward is not differentiable, are not used.
    functional_loss: ``loss(..., functional=True)`` runs under torch.func, so the whole
        step can be compiled as one function.
    cross_validation: protocol=kfold can pool and re-split its data.
    molf: optimizer=molf can train it (class targets, one batch of all data)."""

    images: bool = False
    full_batch: bool = False
    input_derivatives: bool = False
    functional_loss: bool = False
    cross_validation: bool = False
    molf: bool = False


def _no_check(cfg: Mapping[str, Any]) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class TaskEntry:
    name: str
    config: type
    takes: str  # the dataset kind it uses (see adaptrun.data.registry)
    goals: Mapping[str, str]  # every metric it can report, "min" or "max" is better
    build: Callable[[Mapping[str, Any], torch.device], Task]
    input_shape: Callable[[Mapping[str, Any]], tuple[int, ...]]  # from the config alone
    check: Callable[[Mapping[str, Any]], None] = _no_check  # the whole config: task, dataset
    capabilities: TaskCapabilities = TaskCapabilities()
    doc: str = ""
    primary: str = "train_loss"  # the metric adaptrun-report compares by default
    # how a tuned sweep gives a run a validation split when its config holds none: the
    # key and the value it sets (hydra/sweeper=tuned chooses by the primary's val_ twin)
    validation: tuple[str, Any] | None = None

    @property
    def tuned_by(self) -> str | None:
        """The validation metric that stands in for the primary test metric in tuning."""
        twin = "val_" + self.primary.removeprefix("test_")
        return twin if self.primary.startswith("test_") and self.validation else None


TASKS: Registry[TaskEntry] = Registry("task", "task.name")
