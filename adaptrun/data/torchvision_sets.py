"""The seven image benchmarks, read through torchvision's own loaders.

torchvision owns the on-disk formats and the published checksums; this module adds
what a runner needs around them: the list of files it expects (from torchvision's
tables), a clear error when they are missing or corrupt, downloads that never leave
a half-written file where the next run would trust it, and the arrays as uint8
(N, C, H, W) without any per-sample work.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptrun.core.errors import DatasetError, is_count, require
from adaptrun.data.images import Split
from adaptrun.data.registry import DATASETS, DatasetEntry, ImageDatasetConfig, check_images
from adaptrun.data.splits import split_pool
from adaptrun.data.verify import check_idx, check_md5, extract_gz

Arrays = tuple[np.ndarray, np.ndarray]  # uint8 (N, C, H, W), int64 (N,)


@dataclasses.dataclass(frozen=True)
class Source:
    """One torchvision dataset class and the family of on-disk format it uses."""

    name: str
    class_name: str  # in torchvision.datasets
    family: str  # cifar | mnist | svhn | semeion

    @property
    def idx(self) -> bool:
        """Its files are IDX (checked by their headers, not an MD5), and may lie flat in a
        folder of their own, as Debian's dataset packages put them."""
        return self.family == "mnist"

    @property
    def official_test(self) -> bool:
        """It ships a test split (Semeion does not: one is drawn from its samples)."""
        return self.family != "semeion"

    @property
    def cls(self) -> type:
        """The torchvision class, imported on first use: importing torchvision costs a
        second or more, which runs on the embedded digits never need."""
        return getattr(importlib.import_module("torchvision.datasets"), self.class_name)

    def files(self, root: Path) -> list[tuple[Path, str | None]]:
        """Every file the loader reads, with its published MD5 where torchvision has one."""
        cls: Any = self.cls  # torchvision's dataset class: its file tables are class attributes
        if self.family == "cifar":
            folder = root / cls.base_folder
            listed = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
            return [(folder / name, md5) for name, md5 in listed]
        if self.family == "mnist":
            folder = root / cls.__name__ / "raw"
            names = [os.path.splitext(os.path.basename(url))[0] for url, _ in cls.resources]
            return [(folder / name, None) for name in names]
        if self.family == "svhn":
            return [(root / cls.split_list[s][1], cls.split_list[s][2]) for s in ("train", "test")]
        return [(root / cls.filename, cls.md5_checksum)]

    def urls(self) -> list[str]:
        cls: Any = self.cls
        if self.family == "cifar":
            return [cls.url]
        if self.family == "mnist":
            return [f"{cls.mirrors[0]}{name}" for name, _ in cls.resources]
        if self.family == "svhn":
            return [cls.split_list[s][0] for s in ("train", "test")]
        return [cls.url]

    def read(self, root: Path, train: bool, download: bool = False) -> Arrays:
        """One split as arrays (Semeion has a single split: ``train`` is ignored)."""
        cls = self.cls
        if self.family == "svhn":
            ds = cls(str(root), split="train" if train else "test", download=download)
            return np.ascontiguousarray(ds.data), np.asarray(ds.labels, dtype=np.int64)
        if self.family == "semeion":
            ds = cls(str(root), download=download)
            return ds.data[:, None], np.asarray(ds.labels, dtype=np.int64)
        ds = cls(str(root), train=train, download=download)
        if self.family == "cifar":
            x = np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2))
            return x, np.asarray(ds.targets, dtype=np.int64)
        return ds.data.numpy()[:, None], ds.targets.numpy().astype(np.int64)


SOURCES = {
    s.name: s
    for s in (
        Source("cifar10", "CIFAR10", "cifar"),
        Source("cifar100", "CIFAR100", "cifar"),
        Source("svhn", "SVHN", "svhn"),
        Source("mnist", "MNIST", "mnist"),
        Source("kmnist", "KMNIST", "mnist"),
        Source("fashion_mnist", "FashionMNIST", "mnist"),
        Source("semeion", "SEMEION", "semeion"),
    )
}


def _how_to_get(source: Source, root: Path) -> str:
    return (
        f"run once with dataset.download=true where the network is reachable, or fetch "
        f"{' '.join(source.urls())} and unpack into {root} in torchvision's layout, or point "
        "dataset.root (or the ADAPTRUN_DATA variable) at a folder that has them"
    )


def download(source: Source, root: Path) -> None:
    """Download into a temporary folder beside the data; move files in only when complete."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{source.name}-download-") as tmp:
        staging = Path(tmp)
        try:
            for train in (True, False):
                source.read(staging, train, download=True)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatasetError(
                f"dataset {source.name}: download into {root} failed ({reason}); "
                + _how_to_get(source, root)
            ) from exc
        for path, _ in source.files(staging):
            target = root / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)


def load_arrays(name: str, root: Path, download_missing: bool) -> tuple[Arrays, Arrays | None]:
    """(train, test) arrays; test is None for Semeion, which has no official split."""
    source = SOURCES[name]
    root = root.expanduser()
    if root.exists() and not root.is_dir():
        raise DatasetError(
            f"dataset {name}: dataset.root {root} is a file, not a folder; point dataset.root "
            "(or data_root, or the ADAPTRUN_DATA variable) at the folder that holds the data"
        )
    files = source.files(root)
    root, files = _in_place(source, root, files)
    for path, _ in files:  # compressed copies left by torchvision's download or a package
        if not path.is_file() and path.with_name(path.name + ".gz").is_file():
            extract_gz(name, path)
    missing = [path for path, _ in files if not path.is_file()]
    if missing and not download_missing:
        folders = sorted({str(p.parent) for p in missing})
        raise DatasetError(
            f"dataset {name}: not found in {', '.join(folders)} (missing "
            f"{', '.join(p.name for p in missing)}) and dataset.download=false; "
            + _how_to_get(source, root)
        )
    if missing:
        download(source, root)
    for path, md5 in files:
        if md5 is not None:
            check_md5(name, path, md5)
        elif source.idx:
            check_idx(name, path, 3 if "-images-" in path.name else 1)
    try:
        train = source.read(root, train=True)
        test = source.read(root, train=False) if source.official_test else None
    except Exception as exc:
        folder = files[0][0].parent
        raise DatasetError(
            f"dataset {name}: the files in {folder} could not be read "
            f"({type(exc).__name__}: {exc}); delete them and download again"
        ) from exc
    return train, test


def extracted_dir(name: str) -> Path:
    """Where a dataset whose files lie flat in a folder gets torchvision's layout: the
    user's cache (XDG_CACHE_HOME, else ~/.cache), never the data folder itself."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path("~/.cache").expanduser())
    return Path(cache) / "adaptrun" / "extracted" / name


def _in_place(
    source: Source, root: Path, files: list[tuple[Path, str | None]]
) -> tuple[Path, list[tuple[Path, str | None]]]:
    """The folder to read and its files. An IDX dataset whose files (or their .gz) lie
    directly in ``root``, as Debian's dataset-fashion-mnist puts them, read-only, in
    /usr/share/datasets/fashion-mnist, is used from there: extracted once into
    extracted_dir in torchvision's layout. Any other folder is read as it is."""
    if not source.idx or all(path.is_file() for path, _ in files):
        return root, files
    flat = [root / path.name for path, _ in files]
    if not all(p.is_file() or p.with_name(p.name + ".gz").is_file() for p in flat):
        return root, files
    cache = extracted_dir(source.name)
    moved = source.files(cache)
    for (target, _), found in zip(moved, flat, strict=True):
        if not target.is_file():
            packed = found if found.is_file() else found.with_name(found.name + ".gz")
            extract_gz(source.name, target, packed)
    return cache, moved


def _split(arrays: Arrays) -> Split:
    x, y = arrays
    return Split(torch.from_numpy(x), torch.from_numpy(y))


def load_splits(cfg: Mapping[str, Any], split_seed: int = 0) -> tuple[Split, Split]:
    """(train, test) of a torchvision dataset; Semeion's one pool is split as in the
    paper, drawn with ``split_seed``."""
    name = cfg["name"]
    train, test = load_arrays(name, Path(str(cfg["root"])), bool(cfg["download"]))
    if test is not None:
        return _split(train), _split(test)
    pool = _split(train)
    need = int(cfg["train_size"]) + int(cfg["test_size"] or 1)
    if len(pool) < need:
        raise DatasetError(
            f"dataset {name}: has {len(pool)} samples, fewer than "
            f"dataset.train_size + dataset.test_size ({need})"
        )
    return split_pool(pool, int(cfg["train_size"]), cfg["test_size"], split_seed)


@dataclasses.dataclass
class PoolConfig(ImageDatasetConfig):
    """A dataset with no official split (Semeion): seeded train/test sizes."""

    train_size: int = 1000
    test_size: int | None = None  # null: all the rest


def _check_pool(cfg: Mapping[str, Any]) -> None:
    check_images(cfg)
    require(is_count(cfg["train_size"]), "dataset.train_size", "must be an integer >= 1")
    test_size = cfg["test_size"]
    require(
        test_size is None or is_count(test_size),
        "dataset.test_size",
        "must be null (all the rest) or an integer >= 1",
    )


for _source in SOURCES.values():
    _pooled = not _source.official_test  # its test split is drawn from one pool
    DATASETS.register(
        DatasetEntry(
            name=_source.name,
            config=PoolConfig if _pooled else ImageDatasetConfig,
            kind="images",
            check=_check_pool if _pooled else check_images,
            load=load_splits,
            draws_test_split=_pooled,
        )
    )
