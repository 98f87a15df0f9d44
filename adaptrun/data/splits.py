"""Seeded splits: a validation hold-out from train, and a train/test split of one pool."""

from __future__ import annotations

import torch

from adaptrun.data.images import Split


def _permutation(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def split_pool(pool: Split, first: int, second: int | None, seed: int) -> tuple[Split, Split]:
    """A random ``first`` samples and the next ``second`` (None: all the rest)."""
    order = _permutation(len(pool), seed)
    end = len(pool) if second is None else first + second
    a, b = order[:first], order[first:end]
    return Split(pool.x[a], pool.y[a]), Split(pool.x[b], pool.y[b])


def hold_out(train: Split, fraction: float, seed: int) -> tuple[Split, Split | None]:
    """Move a seeded ``round(fraction * N)`` samples (at least one) of train into validation.

    Stratified: samples are ranked by their relative position inside their own
    shuffled class, so every class gives up its share, even with few samples per class.
    """
    if fraction <= 0:
        return train, None
    order = _permutation(len(train), seed)
    labels = train.y[order]
    position = torch.empty(len(train), dtype=torch.float64)
    for cls in labels.unique():
        members = (labels == cls).nonzero().squeeze(1)
        position[members] = (torch.arange(len(members), dtype=torch.float64) + 0.5) / len(members)
    n_val = max(1, round(fraction * len(train)))
    val_idx = order[position.argsort(stable=True)[:n_val]].sort().values
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[val_idx] = False
    train_idx = keep.nonzero().squeeze(1)
    return Split(train.x[train_idx], train.y[train_idx]), Split(train.x[val_idx], train.y[val_idx])


def fold_ids(labels: torch.Tensor, folds: int, seed: int) -> torch.Tensor:
    """A fold number per sample: seeded, stratified (each class dealt round-robin)."""
    order = _permutation(len(labels), seed)
    ids = torch.empty(len(labels), dtype=torch.long)
    offset = 0
    for cls in labels.unique():
        members = order[labels[order] == cls]
        ids[members] = (torch.arange(len(members)) + offset) % folds
        offset += len(members)  # continue the deal so small classes don't all start at fold 0
    return ids


def kfold(train: Split, test: Split, folds: int, fold: int, seed: int) -> tuple[Split, Split]:
    """Pool both splits and hold out fold ``fold`` of ``folds`` as the test split."""
    pool = Split(torch.cat([train.x, test.x]), torch.cat([train.y, test.y]))
    held = fold_ids(pool.y, folds, seed) == fold
    return Split(pool.x[~held], pool.y[~held]), Split(pool.x[held], pool.y[held])
