"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no network."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptrun.core.errors import UserError, is_count, require
from adaptrun.core.files import replace_atomically
from adaptrun.data.images import Split
from adaptrun.data.registry import DATASETS, DatasetEntry, ImageDatasetConfig, check_images


def load_digits(
    test_size: int = 360, split_seed: int = 0, cache: Path | None = None
) -> tuple[Split, Split]:
    """(train, test): the 1797 digits, split once, stratified by class, with a fixed seed.

    The 0..16 grey levels are stored as uint8 on the usual 0..255 scale. ``cache``: a
    folder where the split is kept (a few hundred KB), so that later runs skip importing
    scikit-learn, which costs a run about 1.7 s of start-up (scipy.stats and pandas come
    with it) for a file it reads in milliseconds.
    """
    path = cache / f"digits-{test_size}-{split_seed}.npz" if cache is not None else None
    arrays = _cached(path)
    if arrays is None:
        arrays = _split(test_size, split_seed)
        if path is not None:
            _keep(path, arrays)
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in arrays)
    return Split(x_train, y_train), Split(x_test, y_test)


def _split(test_size: int, split_seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits as _sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = _sklearn_digits()
    pixels = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N,1,8,8)
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, labels, test_size=test_size, stratify=labels, random_state=split_seed
    )
    return x_train, y_train, x_test, y_test


def _cached(path: Path | None) -> tuple[np.ndarray, ...] | None:
    """The kept split, or None when there is none or it does not read as one."""
    if path is None or not path.is_file() or path.is_symlink():
        return None
    try:
        with np.load(path, allow_pickle=False) as kept:
            arrays = tuple(kept[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, ValueError, KeyError):
        return None
    if arrays[0].dtype != np.uint8 or arrays[0].shape[1:] != (1, 8, 8):
        return None
    return arrays


def _keep(path: Path, arrays: tuple[np.ndarray, ...]) -> None:
    """Write the split for later runs; a folder that cannot be written only costs time."""
    names = ("x_train", "y_train", "x_test", "y_test")
    with contextlib.suppress(OSError, UserError):
        path.parent.mkdir(parents=True, exist_ok=True)
        named: dict[str, Any] = dict(zip(names, arrays, strict=True))
        replace_atomically(path, lambda f: np.savez(f, **named))


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
        load=lambda cfg, split_seed: load_digits(
            int(cfg["test_size"]), split_seed, Path(str(cfg["root"])) / "digits"
        ),
        draws_test_split=True,
    )
)
