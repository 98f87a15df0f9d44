"""Tiny datasets written in each benchmark's real on-disk format, for torchvision to parse.

Every writer returns the arrays it wrote as (x uint8 (N, C, H, W), y int64) per split,
so tests can compare what the loaders return pixel for pixel.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import scipy.io

Arrays = tuple[np.ndarray, np.ndarray]
SIZES = {"train": 20, "test": 10}


def _images(rng: np.random.Generator, n: int, c: int, size: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, c, size, size), dtype=np.uint8)


def _labels(rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    return (np.arange(n) % classes)[rng.permutation(n)].astype(np.int64)  # every class present


def write_cifar(root: Path, name: str, rng: np.random.Generator) -> dict[str, Arrays]:
    classes, folder = (
        (10, "cifar-10-batches-py") if name == "cifar10" else (100, "cifar-100-python")
    )
    key = "labels" if name == "cifar10" else "fine_labels"
    out = root / folder
    out.mkdir(parents=True)
    written = {s: (_images(rng, n, 3, 32), _labels(rng, n, classes)) for s, n in SIZES.items()}
    x, y = written["train"]
    if name == "cifar10":
        files = [
            (f"data_batch_{i + 1}", x[i * 4 : i * 4 + 4], y[i * 4 : i * 4 + 4]) for i in range(5)
        ]
        files.append(("test_batch", *written["test"]))
        meta = ("batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    else:
        files = [("train", x, y), ("test", *written["test"])]
        meta = ("meta", {"fine_label_names": [f"class{i}" for i in range(100)]})
    for filename, images, labels in files:
        entry = {
            "data": images.reshape(len(images), -1),
            key: labels.tolist(),
            "filenames": [f"{filename}_{i}.png" for i in range(len(images))],
        }
        (out / filename).write_bytes(pickle.dumps(entry, protocol=2))
    (out / meta[0]).write_bytes(pickle.dumps(meta[1], protocol=2))
    return written


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_family(root: Path, folder: str, rng: np.random.Generator) -> dict[str, Arrays]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    written = {s: (_images(rng, n, 1, 28), _labels(rng, n, 10)) for s, n in SIZES.items()}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = written[split]
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x[:, 0])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    return written


def write_svhn(root: Path, rng: np.random.Generator) -> dict[str, Arrays]:
    root.mkdir(parents=True, exist_ok=True)
    written = {s: (_images(rng, n, 3, 32), _labels(rng, n, 10)) for s, n in SIZES.items()}
    for split, (x, y) in written.items():
        stored = np.where(y == 0, 10, y).astype(np.uint8)[:, None]  # SVHN stores digit 0 as 10
        mat = {"X": x.transpose(2, 3, 1, 0), "y": stored}  # (H, W, C, N)
        scipy.io.savemat(root / f"{split}_32x32.mat", mat)
    return written


def write_semeion(root: Path, rng: np.random.Generator, n: int = 30) -> dict[str, Arrays]:
    root.mkdir(parents=True, exist_ok=True)
    bits = rng.integers(0, 2, size=(n, 256))
    y = _labels(rng, n, 10)
    lines = [
        " ".join(f"{b:.4f}" for b in row) + " " + " ".join(str(int(i == lab)) for i in range(10))
        for row, lab in zip(bits, y, strict=True)
    ]
    (root / "semeion.data").write_text("\n".join(lines) + "\n")
    return {"all": ((bits * 255).astype(np.uint8).reshape(n, 1, 16, 16), y)}


WRITERS = {
    "cifar10": lambda root, rng: write_cifar(root, "cifar10", rng),
    "cifar100": lambda root, rng: write_cifar(root, "cifar100", rng),
    "svhn": write_svhn,
    "mnist": lambda root, rng: write_mnist_family(root, "MNIST", rng),
    "kmnist": lambda root, rng: write_mnist_family(root, "KMNIST", rng),
    "fashion_mnist": lambda root, rng: write_mnist_family(root, "FashionMNIST", rng),
    "semeion": write_semeion,
}
DATASETS = tuple(WRITERS)
SEMEION_SPLIT = ["dataset.train_size=20", "dataset.test_size=null"]


def write(name: str, root: Path, seed: int = 0) -> dict[str, Arrays]:
    return WRITERS[name](root, np.random.default_rng(seed))


def checksums(root: Path) -> dict[str, str]:
    """MD5 of every fixture file by file name (the names are unique across datasets)."""
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def point_checksums_at(table: dict[str, str]) -> None:
    """Replace torchvision's published MD5s by the fixtures' (parsing is untouched)."""
    from torchvision import datasets as tvd

    for cls in (tvd.CIFAR10, tvd.CIFAR100):
        cls.train_list = [[n, table.get(n, md5)] for n, md5 in cls.train_list]
        cls.test_list = [[n, table.get(n, md5)] for n, md5 in cls.test_list]
        cls.meta = {**cls.meta, "md5": table.get(cls.meta["filename"], cls.meta["md5"])}
    tvd.SVHN.split_list = {
        k: [u, f, table.get(f, m)] for k, (u, f, m) in tvd.SVHN.split_list.items()
    }
    tvd.SEMEION.md5_checksum = table.get("semeion.data", tvd.SEMEION.md5_checksum)
