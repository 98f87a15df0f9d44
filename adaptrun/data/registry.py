"""Dataset names to loaders; each loader returns an ImageData on the CPU."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adaptrun.data.digits import load_digits
from adaptrun.data.images import ImageData
from adaptrun.errors import ConfigError, require

LOADERS: dict[str, Callable[[Mapping[str, Any]], ImageData]] = {
    "digits": lambda cfg: load_digits(int(cfg["test_size"]), int(cfg["split_seed"])),
}


def check_dataset(cfg: Mapping[str, Any]) -> None:
    """Config-only checks: a known name and the declared shape every model is built from."""
    require(
        cfg["name"] in LOADERS,
        "dataset.name",
        f"unknown dataset {cfg['name']!r}; valid: {', '.join(LOADERS)}",
    )
    shape = list(cfg["shape"])
    require(
        len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape),
        "dataset.shape",
        f"must be [channels, height, width] (got {shape})",
    )
    require(int(cfg["num_classes"]) >= 2, "dataset.num_classes", "must be >= 2")


def load_dataset(cfg: Mapping[str, Any]) -> ImageData:
    """Load the configured dataset and check it matches the shape its config declares."""
    data = LOADERS[cfg["name"]](cfg)
    declared = tuple(cfg["shape"])
    if data.shape != declared or data.num_classes != int(cfg["num_classes"]):
        raise ConfigError(
            "dataset.shape",
            f"{cfg['name']} loaded as {data.shape} with {data.num_classes} classes, "
            f"but its config declares {declared} with {cfg['num_classes']}",
        )
    return data
