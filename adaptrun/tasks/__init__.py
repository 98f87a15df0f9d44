"""Tasks supply batches, a loss and metrics, so one training loop serves them all.

Every task has: ``GOALS`` (metric -> "min" | "max"), ``goals`` (those this run reports),
``input_shape``, ``num_outputs``, ``steps_per_epoch``, ``train_batches(epoch)``,
``loss(model, batch)`` and ``evaluate(model)``; optionally ``figures(model)`` for
TensorBoard images and ``functional_step`` when its loss also runs under torch.func.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from adaptrun.data import DATASETS, check_dataset, check_protocol, load_dataset, place
from adaptrun.data.augment import Augment, check_ops
from adaptrun.errors import is_count, require
from adaptrun.tasks.burgers import BurgersTask
from adaptrun.tasks.classification import ClassificationTask
from adaptrun.tasks.function import FUNCTIONS, SAMPLINGS, FunctionTask
from adaptrun.tasks.sampling import SAMPLINGS as BOX_SAMPLINGS

TASKS = {"classification": ClassificationTask, "function": FunctionTask, "burgers": BurgersTask}
DATASETS_FOR = {
    "classification": DATASETS,
    "function": ("discontinuous",),
    "burgers": ("burgers",),
}


def check_task(cfg: Mapping[str, Any]) -> None:
    """The task, its dataset and its own keys; config only."""
    task, dataset = cfg["task"], cfg["dataset"]
    name = task["name"]
    require(name in TASKS, "task.name", f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    require(
        dataset["name"] in DATASETS_FOR[name],
        "dataset",
        f"task {name} cannot use dataset {dataset['name']}; it takes: "
        + ", ".join(DATASETS_FOR[name]),
    )
    if name == "classification":
        require(is_count(task["eval_batch_size"]), "task.eval_batch_size", "must be >= 1")
        check_dataset(dataset)
        check_protocol(cfg["protocol"])
        check_ops(list(cfg["augmentation"]["ops"]))
    elif name == "function":
        require(
            dataset["function"] in FUNCTIONS,
            "dataset.function",
            f"unknown function {dataset['function']!r}; valid: {', '.join(FUNCTIONS)}",
        )
        low, high = dataset["domain"]
        require(
            low < high, "dataset.domain", f"must be [low, high] with low < high (got {[low, high]})"
        )
        require(
            dataset["sampling"] in SAMPLINGS,
            "dataset.sampling",
            f"unknown sampling {dataset['sampling']!r}; valid: {', '.join(SAMPLINGS)}",
        )
        for key in ("n_train", "n_test"):
            require(is_count(dataset[key]), f"dataset.{key}", "must be an integer >= 1")
    else:
        require(
            dataset["sampling"] in BOX_SAMPLINGS,
            "dataset.sampling",
            f"unknown sampling {dataset['sampling']!r}; valid: {', '.join(BOX_SAMPLINGS)}",
        )
        for key in ("n_boundary", "n_collocation", "test_nx", "test_nt", "quadrature"):
            require(is_count(dataset[key]), f"dataset.{key}", "must be an integer >= 1")
        require(dataset["nu"] > 0, "dataset.nu", "must be > 0")
        for key in ("weight_residual", "weight_data"):
            require(task[key] >= 0, f"task.{key}", "must be >= 0")
    if name != "classification":
        require(
            not cfg["augmentation"]["ops"],
            "augmentation",
            f"task {name} has no images to augment; use augmentation=none",
        )
        require(
            cfg["protocol"]["name"] == "holdout",
            "protocol",
            f"task {name} has no dataset to split into folds; use protocol=holdout",
        )


def task_input_shape(cfg: Mapping[str, Any]) -> tuple[int, ...]:
    """The model input shape a config implies, without loading anything."""
    name = cfg["task"]["name"]
    if name == "classification":
        return tuple(cfg["dataset"]["shape"])
    return TASKS[name].input_shape


def build_task(cfg: Mapping[str, Any], device: torch.device) -> Any:
    """Build the configured task with its data on ``device``."""
    task, dataset = cfg["task"], cfg["dataset"]
    if task["name"] == "function":
        return FunctionTask(dataset, device)
    if task["name"] == "burgers":
        return BurgersTask(dataset, task, device)
    data = place(load_dataset(dataset, cfg["protocol"]), device, dataset.get("placement", "auto"))
    return ClassificationTask(
        data,
        batch_size=int(cfg["trainer"]["batch_size"]),
        seed=int(cfg["seed"]),
        device=device,
        augment=Augment(list(cfg["augmentation"]["ops"])),
        eval_batch_size=int(task["eval_batch_size"]),
    )


__all__ = [
    "TASKS",
    "BurgersTask",
    "ClassificationTask",
    "FunctionTask",
    "build_task",
    "check_task",
    "task_input_shape",
]
