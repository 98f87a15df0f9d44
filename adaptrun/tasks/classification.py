"""Image classification: batches from device-resident splits, cross-entropy, accuracy."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from adaptrun.core.errors import is_count, require
from adaptrun.data import load_dataset, place
from adaptrun.data.augment import Augment, check_ops
from adaptrun.data.images import ImageData, Split, batch_indices, standardize, to_unit
from adaptrun.data.registry import data_seed, split_follows_seed
from adaptrun.tasks.modes import eval_mode
from adaptrun.tasks.registry import TASKS, TaskCapabilities, TaskEntry

Batch = tuple[torch.Tensor, torch.Tensor]


class ClassificationTask:
    """Supplies the loop's batches, loss and metrics; knows nothing of the model.

    Pixels stay uint8 wherever the data lives (on the device, or pinned host memory
    for datasets too big for it); each batch is moved, augmented in [0, 1] and then
    normalised on ``device``.
    """

    GOALS: ClassVar[dict[str, str]] = {
        "train_loss": "min",
        "val_loss": "min",
        "val_acc": "max",
        "test_loss": "min",
        "test_acc": "max",
    }
    compiled_step_pays = False  # not measured: eager unless trainer.compile=true

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        seed: int,
        device: torch.device,
        augment: Augment | None = None,
        eval_batch_size: int = 1024,
        redraw: Callable[[int], ImageData] | None = None,
        data_seed: int | None = None,
    ) -> None:
        self.data = data
        # what drew the splits: the run's seed, or dataset.split_seed's one fixed draw
        self.data_seed = seed if data_seed is None else data_seed
        self.redraw = redraw  # None: the splits do not change with the seed
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.augment = augment
        self.eval_batch_size = eval_batch_size
        self._normalize(data)
        self.memory_format = torch.contiguous_format  # channels-last on CUDA: fastpaths

    def _normalize(self, data: ImageData) -> None:
        """Standardise with the statistics of ``data``'s own training split."""
        self._mean = torch.tensor(data.mean, device=self.device).view(-1, 1, 1)
        self._std = torch.tensor(data.std, device=self.device).view(-1, 1, 1)

    @property
    def goals(self) -> dict[str, str]:
        """The metrics this run reports, with whether lower or higher is better."""
        absent = [f"{name}_" for name in ("val", "test") if name not in self.data.splits]
        return {k: v for k, v in self.GOALS.items() if not k.startswith(tuple(absent))}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.data.shape

    @property
    def num_outputs(self) -> int:
        return self.data.num_classes

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data.train) / self.batch_size)

    def with_seed(self, seed: int) -> ClassificationTask:
        """Another run's batch order and augmentation, and its own draw of the hold-out
        (and of a drawn test split) where those follow the seed; otherwise the same data,
        shared, not copied. Stacked runs use one per seed."""
        task = copy.copy(self)
        task.seed = seed
        if self.redraw is not None and seed != self.data_seed:
            task.data, task.data_seed = self.redraw(seed), seed
            task._normalize(task.data)
        return task

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """The epoch's shuffled, augmented batches; they depend only on (seed, epoch)."""
        split = self.data.train
        seed = self.seed * 1_000_003 + epoch
        gen = torch.Generator(device=self.device).manual_seed(seed)
        for idx in batch_indices(len(split), self.batch_size, seed, split.x.device):
            yield self._prepare(split, idx, gen)

    def loss(self, model: nn.Module, batch: Batch, functional: bool = False) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(model(x), y)

    def figures(self, model: nn.Module) -> dict[str, Any]:
        return {}

    def settings(self) -> dict[str, Any]:
        # what drew the hold-out, a train subset and any drawn test split; what trained
        return {"data_seed": self.data_seed, "train_samples": len(self.data.train)}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Loss and accuracy on the test split (and validation split, if held out)."""
        metrics: dict[str, float] = {}
        with eval_mode(model):
            for name in ("val", "test"):
                split = self.data.splits.get(name)
                if split is not None:
                    loss, acc = self._score(model, split)
                    metrics[f"{name}_loss"], metrics[f"{name}_acc"] = loss, acc
        return metrics

    def _score(self, model: nn.Module, split: Split) -> tuple[float, float]:
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for idx in batch_indices(len(split), self.eval_batch_size, None, split.x.device):
            x, y = self._prepare(split, idx, None)
            logits = model(x).float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
        return loss_sum.item() / len(split), correct.item() / len(split)

    def _prepare(self, split: Split, idx: torch.Tensor, gen: torch.Generator | None) -> Batch:
        x, y = split.x[idx], split.y[idx]
        if x.device != self.device:  # host-resident data: copy the batch asynchronously
            pinned = self.device.type == "cuda"
            x = (x.pin_memory() if pinned else x).to(self.device, non_blocking=pinned)
            y = (y.pin_memory() if pinned else y).to(self.device, non_blocking=pinned)
        x = to_unit(x)
        if gen is not None and self.augment:
            x = self.augment(x, gen)
        x = standardize(x, self._mean, self._std)
        return x.contiguous(memory_format=self.memory_format), y


@dataclasses.dataclass
class ClassificationConfig:
    name: str = "classification"
    eval_batch_size: int = 1024


def _check(cfg: Mapping[str, Any]) -> None:
    require(is_count(cfg["task"]["eval_batch_size"]), "task.eval_batch_size", "must be >= 1")
    check_ops(list(cfg["augmentation"]["ops"]))


def build(cfg: Mapping[str, Any], device: torch.device) -> ClassificationTask:
    """The configured dataset, split by the protocol, placed for ``device``."""
    dataset = cfg["dataset"]

    def load(split_seed: int) -> ImageData:
        data = load_dataset(dataset, cfg["protocol"], split_seed)
        if not cfg["trainer"]["test"]:  # dropped before anything holds or scores it
            data = dataclasses.replace(data, test=None)
        return place(data, device, dataset["placement"])

    drawn_by = data_seed(cfg)
    return ClassificationTask(
        load(drawn_by),
        batch_size=int(cfg["trainer"]["batch_size"]),
        seed=int(cfg["seed"]),
        device=device,
        augment=Augment(list(cfg["augmentation"]["ops"])),
        eval_batch_size=int(cfg["task"]["eval_batch_size"]),
        redraw=load if split_follows_seed(cfg) else None,
        data_seed=drawn_by,
    )


TASKS.register(
    TaskEntry(
        name="classification",
        config=ClassificationConfig,
        takes="images",
        goals=ClassificationTask.GOALS,
        primary="test_acc",
        validation=("dataset.val_fraction", 0.1),  # a tenth of the training split, per seed
        build=build,
        input_shape=lambda cfg: tuple(cfg["dataset"]["shape"]),
        check=_check,
        capabilities=TaskCapabilities(images=True, cross_validation=True, molf=True),
    )
)
