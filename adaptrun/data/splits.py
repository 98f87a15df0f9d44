"""Seeded splits: a validation hold-out from train, and a train/test split of one pool."""

from __future__ import annotations

import torch

from adaptrun.core.errors import DatasetError
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
    n_val = max(1, round(fraction * len(train)))
    val_idx = _stratified(train, seed)[:n_val].sort().values
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[val_idx] = False
    train_idx = keep.nonzero().squeeze(1)
    return Split(train.x[train_idx], train.y[train_idx]), Split(train.x[val_idx], train.y[val_idx])


def _stratified(split: Split, seed: int) -> torch.Tensor:
    """Every sample's index, seeded and stratified: ranked by its relative position inside
    its own shuffled class, so that any leading part holds each class's share."""
    order = _permutation(len(split), seed)
    labels = split.y[order]
    position = torch.empty(len(split), dtype=torch.float64)
    for cls in labels.unique():
        members = (labels == cls).nonzero().squeeze(1)
        position[members] = (torch.arange(len(members), dtype=torch.float64) + 0.5) / len(members)
    return order[position.argsort(stable=True)]


def subset(split: Split, size: int | None, seed: int) -> Split:
    """A seeded, stratified ``size`` samples of ``split`` (None: all of it), to iterate on
    a large dataset where a full epoch takes minutes (dataset.train_subset)."""
    if size is None:
        return split
    if size > len(split):
        raise DatasetError(
            f"dataset.train_subset={size} exceeds the {len(split)} training samples; "
            "choose a smaller subset or null"
        )
    idx = _stratified(split, seed + 1)[:size].sort().values  # +1: not the hold-out's draw
    return Split(split.x[idx], split.y[idx])


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
