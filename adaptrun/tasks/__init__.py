"""Tasks supply batches, a loss and metrics, so one training loop serves them all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from adaptrun.data import load_dataset, place
from adaptrun.data.augment import Augment
from adaptrun.errors import require
from adaptrun.tasks.classification import ClassificationTask

TASKS = ("classification",)


def check_task(cfg: Mapping[str, Any]) -> None:
    require(
        cfg["name"] in TASKS,
        "task.name",
        f"unknown task {cfg['name']!r}; valid: {', '.join(TASKS)}",
    )
    require(int(cfg["eval_batch_size"]) >= 1, "task.eval_batch_size", "must be >= 1")


def build_task(cfg: Mapping[str, Any], device: torch.device) -> ClassificationTask:
    """Load the data, place it for ``device`` and wrap it in the configured task."""
    dataset = cfg["dataset"]
    data = place(load_dataset(dataset), device, dataset.get("placement", "auto"))
    return ClassificationTask(
        data,
        batch_size=int(cfg["trainer"]["batch_size"]),
        seed=int(cfg["seed"]),
        device=device,
        augment=Augment(list(cfg["augmentation"]["ops"])),
        eval_batch_size=int(cfg["task"]["eval_batch_size"]),
    )


__all__ = ["TASKS", "ClassificationTask", "build_task", "check_task"]
