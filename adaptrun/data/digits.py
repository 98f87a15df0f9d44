"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no network."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from adaptrun.data.images import Split
from adaptrun.data.registry import DATASETS, DatasetEntry, ImageDatasetConfig, check_images
from adaptrun.errors import is_count, require


def load_digits(test_size: int = 360, split_seed: int = 0) -> tuple[Split, Split]:
    """(train, test): the 1797 digits, split once, stratified by class, with a fixed seed.

    The 0..16 grey levels are stored as uint8 on the usual 0..255 scale.
    """
    # imported here: scikit-learn takes a second to import, and most commands never load this
    from sklearn.datasets import load_digits as _sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = _sklearn_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N,1,8,8)
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, labels, test_size=test_size, stratify=labels, random_state=split_seed
    )
    train = Split(torch.from_numpy(x_train), torch.from_numpy(y_train))
    return train, Split(torch.from_numpy(x_test), torch.from_numpy(y_test))


@dataclasses.dataclass
class DigitsConfig(ImageDatasetConfig):
    name: str = "digits"
    test_size: int = 360  # a fixed, stratified train/test split: 1437 / 360


def _check(cfg: Mapping[str, Any]) -> None:
    check_images(cfg)
    require(is_count(cfg["test_size"]), "dataset.test_size", "must be an integer >= 1")


DATASETS.register(
    DatasetEntry(
        name="digits",
        config=DigitsConfig,
        kind="images",
        check=_check,
        load=lambda cfg: load_digits(int(cfg["test_size"]), int(cfg["split_seed"])),
    )
)
