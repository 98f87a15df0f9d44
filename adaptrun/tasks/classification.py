"""Image classification: batches from device-resident splits, cross-entropy, accuracy."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from adaptrun.data.images import ImageData, Split, batch_indices, normalize

Batch = tuple[torch.Tensor, torch.Tensor]


class ClassificationTask:
    """Supplies the loop's batches, loss and test metrics; knows nothing of the model."""

    goals: ClassVar[dict[str, str]] = {"train_loss": "min", "test_loss": "min", "test_acc": "max"}

    def __init__(
        self, data: ImageData, batch_size: int, seed: int, eval_batch_size: int = 1024
    ) -> None:
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.eval_batch_size = eval_batch_size
        device = data.train.x.device
        self._mean = torch.tensor(data.mean, device=device).view(-1, 1, 1)
        self._std = torch.tensor(data.std, device=device).view(-1, 1, 1)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.data.shape

    @property
    def num_classes(self) -> int:
        return self.data.num_classes

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data.train) / self.batch_size)

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """The epoch's shuffled batches; the order depends only on (seed, epoch)."""
        split = self.data.train
        seed = self.seed * 1_000_003 + epoch
        for idx in batch_indices(len(split), self.batch_size, seed, split.x.device):
            yield self._prepare(split, idx)

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Test loss and accuracy over the whole test split, in eval mode."""
        was_training = model.training
        model.eval()
        split = self.data.test
        loss_sum = torch.zeros((), device=split.x.device)
        correct = torch.zeros((), device=split.x.device, dtype=torch.long)
        for idx in batch_indices(len(split), self.eval_batch_size, None, split.x.device):
            x, y = self._prepare(split, idx)
            logits = model(x).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
        model.train(was_training)
        n = len(split)
        return {"test_loss": loss_sum.item() / n, "test_acc": correct.item() / n}

    def _prepare(self, split: Split, idx: torch.Tensor) -> Batch:
        return normalize(split.x[idx], self._mean, self._std), split.y[idx]
