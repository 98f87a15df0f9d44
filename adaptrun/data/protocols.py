"""The evaluation protocols: how a dataset's train and test splits are used (holdout keeps
the official split; kfold pools both and tests on one fold), each a registry entry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from adaptrun.core.errors import is_count, require
from adaptrun.core.registry import Registry
from adaptrun.core.schemas import check_section
from adaptrun.data.images import Split
from adaptrun.data.splits import kfold


def _no_check(cfg: Mapping[str, Any]) -> None:
    return None


def _keep(train: Split, test: Split, cfg: Mapping[str, Any]) -> tuple[Split, Split]:
    return train, test


@dataclasses.dataclass(frozen=True)
class ProtocolEntry:
    """A ``protocol`` option. ``pools_splits``: it draws its own test split from the
    pooled data, so only a task that can cross-validate may take it."""

    name: str
    config: type
    split: Callable[[Split, Split, Mapping[str, Any]], tuple[Split, Split]] = _keep
    check: Callable[[Mapping[str, Any]], None] = _no_check
    pools_splits: bool = False


PROTOCOLS: Registry[ProtocolEntry] = Registry("protocol", "protocol.name")


@dataclasses.dataclass
class HoldoutConfig:
    name: str = "holdout"


@dataclasses.dataclass
class KFoldConfig:
    name: str = "kfold"
    folds: Any = 10
    fold: Any = 0
    seed: Any = 0  # the fold assignment: the same for every fold of a sweep


def _check_kfold(cfg: Mapping[str, Any]) -> None:
    folds, fold = cfg["folds"], cfg["fold"]
    require(is_count(folds, 2), "protocol.folds", "must be an integer >= 2")
    require(
        is_count(fold, 0) and fold < folds,
        "protocol.fold",
        f"must be between 0 and protocol.folds - 1 = {folds - 1} (got {fold!r})",
    )


def _fold(train: Split, test: Split, cfg: Mapping[str, Any]) -> tuple[Split, Split]:
    return kfold(train, test, int(cfg["folds"]), int(cfg["fold"]), int(cfg["seed"]))


def check_protocol(cfg: Mapping[str, Any]) -> None:
    entry = PROTOCOLS[cfg["name"]]
    check_section("protocol", cfg, entry.config, f"protocol {entry.name}")
    entry.check(cfg)


PROTOCOLS.register(ProtocolEntry("holdout", HoldoutConfig))
PROTOCOLS.register(
    ProtocolEntry("kfold", KFoldConfig, _fold, check=_check_kfold, pools_splits=True)
)
