"""The dataset registry: what each dataset option is (its typed config, its kind, its
checks) and, for image datasets, how to load it as an ImageData on the CPU.

A dataset's ``kind`` says which tasks can use it: a task declares the kind it takes
(classification takes ``images``; the function and Burgers tasks define their own
problems and register those as datasets of their own kind).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch

from adaptrun.core.errors import ConfigError, is_count, is_number, require
from adaptrun.core.registry import Registry
from adaptrun.data.images import ImageData, Split, channel_stats
from adaptrun.data.placement import PLACEMENTS
from adaptrun.data.protocols import PROTOCOLS
from adaptrun.data.splits import hold_out, subset

Loader = Callable[[Mapping[str, Any], int], tuple[Split, Split]]  # (cfg, split seed)


def _no_check(cfg: Mapping[str, Any]) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class DatasetEntry:
    name: str
    config: type
    kind: str  # images | a task's own problem kind
    check: Callable[[Mapping[str, Any]], None] = _no_check
    load: Loader | None = None  # images: (train, test) splits, uint8 on the CPU
    doc: str = ""
    draws_test_split: bool = False  # images: the test split is drawn with dataset.split_seed


DATASETS: Registry[DatasetEntry] = Registry("dataset", "dataset.name")


@dataclasses.dataclass
class ImageDatasetConfig:
    """The keys every image dataset has."""

    name: str = ""
    shape: list[int] = dataclasses.field(default_factory=list)  # channels, height, width
    num_classes: int = 10
    root: str = "${data_root}"
    download: bool = True
    split_seed: int | None = None  # None: the run's seed draws the hold-out (and any test split)
    val_fraction: float = 0.0
    train_subset: int | None = None  # a seeded, stratified subset of the training split
    placement: str = "auto"  # auto | device | host
    # the locally-adaptive paper's augmentation for this dataset (augmentation=paper)
    paper_augmentation: list[Any] = dataclasses.field(default_factory=list)


def data_seed(cfg: Mapping[str, Any]) -> int:
    """The seed that draws a run's data (points, hold-out, a drawn test split):
    ``dataset.split_seed`` when it fixes one draw for every seed, else the run's own
    ``seed``, so each seed redraws the data the same way for every column of a sweep."""
    fixed = cfg["dataset"].get("split_seed")
    return int(cfg["seed"] if fixed is None else fixed)


def split_follows_seed(cfg: Mapping[str, Any]) -> bool:
    """Whether a classification run's splits change with its seed (stacked runs then
    need one copy of the data per seed; otherwise they share one)."""
    dataset = cfg["dataset"]
    drawn = (
        float(dataset.get("val_fraction", 0.0)) > 0
        or dataset.get("train_subset") is not None
        or DATASETS[dataset["name"]].draws_test_split
    )
    return dataset.get("split_seed") is None and drawn


def check_images(cfg: Mapping[str, Any]) -> None:
    """Checks every image dataset shares: the declared shape every model is built from."""
    shape = list(cfg["shape"])
    require(
        len(shape) == 3 and all(is_count(s) for s in shape),
        "dataset.shape",
        f"must be [channels, height, width] (got {shape})",
    )
    require(int(cfg["num_classes"]) >= 2, "dataset.num_classes", "must be >= 2")
    fraction = cfg["val_fraction"]
    require(
        is_number(fraction) and 0 <= fraction < 1,
        "dataset.val_fraction",
        f"must be in [0, 1) (got {fraction!r})",
    )
    size = cfg.get("train_subset")
    require(
        size is None or is_count(size),
        "dataset.train_subset",
        f"must be null (the whole training split) or an integer >= 1 (got {size!r})",
    )
    require(
        cfg["placement"] in PLACEMENTS,
        "dataset.placement",
        f"unknown placement {cfg['placement']!r}; valid: {', '.join(PLACEMENTS)}",
    )


def load_dataset(
    cfg: Mapping[str, Any], protocol: Mapping[str, Any] | None = None, split_seed: int = 0
) -> ImageData:
    """Load the configured dataset, apply the protocol, hold out validation, check shapes.
    ``split_seed`` draws the hold-out and any drawn test split (``data_seed``); the
    k-fold assignment has its own ``protocol.seed``, the same for every fold."""
    entry = DATASETS[cfg["name"]]
    if entry.load is None:
        raise ConfigError("dataset", f"dataset {entry.name} has no images to load")
    train, test = entry.load(cfg, split_seed)
    if protocol is not None:
        train, test = PROTOCOLS[protocol["name"]].split(train, test, protocol)
    train, val = hold_out(train, float(cfg.get("val_fraction", 0.0)), split_seed)
    train = subset(train, cfg.get("train_subset"), split_seed)
    mean, std = channel_stats(train.x)
    data = ImageData(cfg["name"], train, test, int(cfg["num_classes"]), mean, std, val)
    declared = tuple(cfg["shape"])
    labels = int(torch.cat([s.y for s in data.splits.values()]).max()) + 1
    if data.shape != declared or labels > data.num_classes:
        raise ConfigError(
            "dataset.shape",
            f"{cfg['name']} loaded as {data.shape} with labels up to {labels - 1}, "
            f"but its config declares {declared} with {cfg['num_classes']} classes",
        )
    return data
