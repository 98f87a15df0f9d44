"""Dataset names to loaders; every loader returns an ImageData on the CPU."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from adaptrun.data.digits import load_digits
from adaptrun.data.images import ImageData, Split, channel_stats
from adaptrun.data.placement import PLACEMENTS
from adaptrun.data.splits import hold_out, kfold, split_pool
from adaptrun.data.torchvision_sets import SOURCES, load_arrays
from adaptrun.errors import ConfigError, DatasetError, is_count, require

DATASETS = ("digits", *SOURCES)
PROTOCOLS = ("holdout", "kfold")


def _split(arrays: tuple[Any, Any]) -> Split:
    x, y = arrays
    return Split(torch.from_numpy(x), torch.from_numpy(y))


def _load_raw(cfg: Mapping[str, Any]) -> tuple[Split, Split]:
    name = cfg["name"]
    if name == "digits":
        return load_digits(int(cfg["test_size"]), int(cfg["split_seed"]))
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
        len(shape) == 3 and all(is_count(s) for s in shape),
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
            is_count(cfg["train_size"]),
            "dataset.train_size",
            "must be an integer >= 1",
        )
        test_size = cfg["test_size"]
        require(
            test_size is None or is_count(test_size),
            "dataset.test_size",
            "must be null (all the rest) or an integer >= 1",
        )


def check_protocol(cfg: Mapping[str, Any]) -> None:
    """holdout keeps the official split; kfold pools it and tests on one fold."""
    require(
        cfg["name"] in PROTOCOLS,
        "protocol.name",
        f"unknown protocol {cfg['name']!r}; valid: {', '.join(PROTOCOLS)}",
    )
    if cfg["name"] == "kfold":
        folds, fold = cfg["folds"], cfg["fold"]
        require(is_count(folds, 2), "protocol.folds", "must be an integer >= 2")
        require(
            is_count(fold, 0) and fold < folds,
            "protocol.fold",
            f"must be between 0 and protocol.folds - 1 = {folds - 1} (got {fold!r})",
        )


def load_dataset(cfg: Mapping[str, Any], protocol: Mapping[str, Any] | None = None) -> ImageData:
    """Load the configured dataset, apply the protocol, hold out validation, check shapes."""
    train, test = _load_raw(cfg)
    if protocol is not None and protocol["name"] == "kfold":
        seed = int(protocol["seed"])
        train, test = kfold(train, test, int(protocol["folds"]), int(protocol["fold"]), seed)
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
