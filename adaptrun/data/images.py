"""Image datasets held as uint8 tensors on the training device.

Every split is read once into ``x`` (N, C, H, W) uint8 and ``y`` (N,) int64 and
moved to the device; batches are cut there by index, so the training path has no
per-sample Python or PIL work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import torch


@dataclasses.dataclass
class Split:
    """One split's pixels and labels."""

    x: torch.Tensor  # uint8 (N, C, H, W)
    y: torch.Tensor  # int64 (N,)

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            got = f"{self.x.dtype} {tuple(self.x.shape)}"
            raise ValueError(f"pixels must be uint8 (N, C, H, W), got {got}")
        if self.y.shape != (self.x.shape[0],):
            raise ValueError(f"{self.x.shape[0]} images but labels of shape {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device))

    def pin(self) -> Split:
        return Split(self.x.pin_memory(), self.y.pin_memory())


@dataclasses.dataclass
class ImageData:
    """A dataset ready for training: both splits plus what models and normalisation need."""

    name: str
    train: Split
    test: Split | None  # None: a run with trainer.test=false never holds it
    num_classes: int
    mean: tuple[float, ...]  # per channel, on the [0, 1] pixel scale
    std: tuple[float, ...]
    val: Split | None = None  # held out from train when dataset.val_fraction > 0

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    @property
    def splits(self) -> dict[str, Split]:
        present = {"train": self.train, "val": self.val, "test": self.test}
        return {name: split for name, split in present.items() if split is not None}

    @property
    def nbytes(self) -> int:
        return sum(s.x.nbytes + s.y.nbytes for s in self.splits.values())

    def to(self, device: torch.device) -> ImageData:
        moved: dict[str, Any] = {k: s.to(device) for k, s in self.splits.items()}
        return dataclasses.replace(self, **moved)

    def pin(self) -> ImageData:
        pinned: dict[str, Any] = {k: s.pin() for k, s in self.splits.items()}
        return dataclasses.replace(self, **pinned)


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images on the [0, 1] scale."""
    values = x.double().div(255).transpose(0, 1).reshape(x.shape[1], -1)
    return tuple(values.mean(1).tolist()), tuple(values.std(1).clamp_min(1e-8).tolist())


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 on [0, 1] (what augmentation works on)."""
    return x.float().div_(255)


def standardize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std with mean and std shaped (C, 1, 1), on the [0, 1] scale."""
    return (x - mean) / std


def batch_indices(
    n: int, batch_size: int, seed: int | None, device: torch.device
) -> Iterator[torch.Tensor]:
    """Index batches over n samples: shuffled by ``seed`` (None: in order), on ``device``.

    The permutation is drawn on the CPU from its own generator so the order depends
    only on the seed, not on the device or on anything else that consumed randomness.
    """
    if seed is None:
        order = torch.arange(n, device=device)
    else:
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(n, generator=generator).to(device)
    yield from order.split(batch_size)
