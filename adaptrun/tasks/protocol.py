"""What the training loop, the steps and the tracker need of a task: one place, typed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import torch
from torch import nn


class Trainable(Protocol):
    """What the training loop asks of a task: a run's Task, or a stack of runs'
    (``adaptrun.training.stacked.StackedTask``, whose metrics come per run)."""

    @property
    def steps_per_epoch(self) -> int: ...

    def train_batches(self, epoch: int) -> Iterator[Any]: ...

    def loss(self, model: nn.Module, batch: Any, functional: bool = False) -> torch.Tensor: ...

    def evaluate(self, model: nn.Module) -> Any: ...


class Task(Trainable, Protocol):
    """Batches, a loss and metrics for one run; the loop knows nothing else about it.

    goals: each reported metric and whether ``min`` or ``max`` is better.
    input_shape, num_outputs: what the model is built for.
    steps_per_epoch: optimizer steps in one pass over the training data.
    compiled_step_pays: ``trainer.compile=auto`` compiles this task's step on CPU (where
    scripts/bench_pinn.py measured the compiled step faster than eager, compile included).
    """

    @property
    def goals(self) -> Mapping[str, str]: ...

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    def num_outputs(self) -> int: ...

    @property
    def steps_per_epoch(self) -> int: ...

    @property
    def compiled_step_pays(self) -> bool: ...

    def with_seed(self, seed: int) -> Task:
        """The same data with another run's batch order (stacked runs, one per seed)."""
        ...

    def train_batches(self, epoch: int) -> Iterator[Any]:
        """The epoch's batches; they depend only on (seed, epoch), so a resume replays them."""
        ...

    def loss(self, model: nn.Module, batch: Any, functional: bool = False) -> torch.Tensor:
        """The task's loss on a batch; ``functional``: safe under torch.func transforms (only
        asked of tasks whose entry declares ``functional_loss``)."""
        ...

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """The metrics named in ``goals`` (all but train_loss), on held-out data."""
        ...

    def figures(self, model: nn.Module) -> dict[str, Any]:
        """Matplotlib figures for TensorBoard (name -> figure); may be empty."""
        ...

    def settings(self) -> dict[str, Any]:
        """What the task resolved for this run (e.g. how it takes input derivatives),
        recorded in metrics.json; may be empty."""
        ...
