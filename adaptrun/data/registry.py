"""Dataset names to loaders; every loader returns an ImageData on the CPU."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from adaptrun.data.digits import load_digits
from adaptrun.data.images import ImageData, Split, channel_stats
from adaptrun.data.placement import PLACEMENTS
from adaptrun.data.splits import hold_out, split_pool
from adaptrun.data.torchvision_sets import SOURCES, load_arrays
from adaptrun.errors import ConfigError, DatasetError, require

DATASETS = ("digits", *SOURCES)


def _split(arrays: tuple[Any, Any]) -> Split:
    x, y = arrays
    return Split(torch.from_numpy(x), torch.from_numpy(y))


def _load_raw(cfg: Mapping[str, Any]) -> tuple[Split, Split]:
    name = cfg["name"]
    if name == "digits":
        data = load_digits(int(cfg["test_size"]), int(cfg["split_seed"]))
        return data.train, data.test
    train, test = load_arrays(name, Path(str(cfg["root"])), bool(cfg["download"]))
    if test is not None:
        return _split(train), _split(test)
    pool = _split(train)  # Semeion: one pool, split as in the paper
    need = int(cfg["train_size"]) + int(cfg["test_size"] or 1)
    if len(pool) < need:
        raise DatasetError(
            f"dataset {name}: has {len(pool)} samples, fewer than "
            f"dataset.train_size + dataset.test_size ({need})"
        )
    return split_pool(pool, int(cfg["train_size"]), cfg["test_size"], int(cfg["split_seed"]))


def check_dataset(cfg: Mapping[str, Any]) -> None:
    """Config-only checks: a known name and the declared shape every model is built from."""
    require(
        cfg["name"] in DATASETS,
        "dataset.name",
        f"unknown dataset {cfg['name']!r}; valid: {', '.join(DATASETS)}",
    )
    shape = list(cfg["shape"])
    require(
        len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape),
        "dataset.shape",
        f"must be [channels, height, width] (got {shape})",
    )
    require(int(cfg["num_classes"]) >= 2, "dataset.num_classes", "must be >= 2")
    fraction = cfg.get("val_fraction", 0.0)
    require(
        isinstance(fraction, (int, float)) and 0 <= fraction < 1,
        "dataset.val_fraction",
        f"must be in [0, 1) (got {fraction!r})",
    )
    require(
        cfg.get("placement", "auto") in PLACEMENTS,
        "dataset.placement",
        f"unknown placement {cfg.get('placement')!r}; valid: {', '.join(PLACEMENTS)}",
    )
    if "train_size" in cfg:
        require(
            isinstance(cfg["train_size"], int) and cfg["train_size"] > 0,
            "dataset.train_size",
            "must be an integer >= 1",
        )
        test_size = cfg["test_size"]
        require(
            test_size is None or (isinstance(test_size, int) and test_size > 0),
            "dataset.test_size",
            "must be null (all the rest) or an integer >= 1",
        )


def load_dataset(cfg: Mapping[str, Any]) -> ImageData:
    """Load the configured dataset, hold out validation, check the declared shape."""
    train, test = _load_raw(cfg)
    train, val = hold_out(train, float(cfg.get("val_fraction", 0.0)), int(cfg["split_seed"]))
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
