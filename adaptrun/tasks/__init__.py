"""Tasks supply batches, a loss and metrics, so one training loop serves them all.

Every module of this package registers its task (and the datasets of its own kind) in
``TASKS``; ``Task`` (adaptrun.tasks.protocol) is what the loop asks of a built task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adaptrun.core.errors import require
from adaptrun.core.registry import discover
from adaptrun.data import DATASETS, PROTOCOLS, check_protocol
from adaptrun.tasks.burgers import BurgersTask
from adaptrun.tasks.classification import ClassificationTask
from adaptrun.tasks.function import FunctionTask
from adaptrun.tasks.protocol import Task
from adaptrun.tasks.registry import TASKS, TaskCapabilities, TaskEntry

discover(__name__)


def check_task(cfg: Mapping[str, Any]) -> TaskEntry:
    """The task, its dataset and the keys they own; config only."""
    task = TASKS[cfg["task"]["name"]]
    dataset = DATASETS[cfg["dataset"]["name"]]
    takers = [t.name for t in TASKS.values() if t.takes == dataset.kind]
    require(
        dataset.kind == task.takes,
        "dataset",
        f"task {task.name} cannot use dataset {dataset.name}; it takes: "
        + ", ".join(d.name for d in DATASETS.values() if d.kind == task.takes)
        + (f"; dataset {dataset.name} goes with task={' or task='.join(takers)}" if takers else "")
        + " (an experiment=... preset sets both: adaptrun --help lists them)",
    )
    dataset.check(cfg["dataset"])
    task.check(cfg)
    caps = task.capabilities
    require(
        caps.images or not cfg["augmentation"]["ops"],
        "augmentation",
        f"task {task.name} has no images to augment; use augmentation=none",
    )
    check_protocol(cfg["protocol"])
    require(
        caps.cross_validation or not PROTOCOLS[cfg["protocol"]["name"]].pools_splits,
        "protocol",
        f"task {task.name} has no dataset to split into folds; use protocol="
        + " or ".join(e.name for e in PROTOCOLS.values() if not e.pools_splits),
    )
    return task


__all__ = [
    "TASKS",
    "BurgersTask",
    "ClassificationTask",
    "FunctionTask",
    "Task",
    "TaskCapabilities",
    "TaskEntry",
    "check_task",
]
