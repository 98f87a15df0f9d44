"""Convergence figures: when a curve first reaches a target, and the area under log loss."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """One logged value with where and when it was logged."""

    step: int
    epoch: float
    seconds: float
    value: float


def first_reach(points: Sequence[Point], target: float, goal: str) -> dict[str, float] | None:
    """Step, epoch and seconds of the first point at or beyond target (None: never)."""
    for p in points:
        if (p.value >= target) if goal == "max" else (p.value <= target):
            return {"step": p.step, "epoch": p.epoch, "seconds": round(p.seconds, 3)}
    return None


def auc_log10(points: Sequence[Point]) -> float | None:
    """Trapezoidal area under log10(value) against epochs; smaller means faster convergence.

    Only comparable between runs with the same epoch budget. None with fewer than two
    points or a non-positive value.
    """
    if len(points) < 2 or any(p.value <= 0 or not math.isfinite(p.value) for p in points):
        return None
    area = 0.0
    for a, b in itertools.pairwise(points):
        area += 0.5 * (math.log10(a.value) + math.log10(b.value)) * (b.epoch - a.epoch)
    return area
