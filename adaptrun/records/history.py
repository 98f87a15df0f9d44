"""A run's history: every logged value with where and when, and what metrics.json says of it
(final and best values, convergence to each target, the area under the log loss)."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ENDED = ("completed", "diverged")  # a run that ended for good: a rerun of it skips it


def ended(run_dir: Path) -> bool:
    """Whether metrics.json in ``run_dir`` records a status of ENDED (a missing or
    unreadable file: no, its run trains again)."""
    try:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and metrics.get("status") in ENDED


@dataclasses.dataclass(frozen=True)
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


class History:
    """Points per metric; ``goals`` says for each whether lower or higher is better."""

    def __init__(
        self,
        goals: Mapping[str, str],
        steps_per_epoch: int,
        targets: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.goals = dict(goals)
        self.targets = {k: [float(t) for t in v] for k, v in (targets or {}).items()}
        self.steps_per_epoch = steps_per_epoch
        self.points: dict[str, list[Point]] = {name: [] for name in goals}
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def record(self, name: str, step: int, value: float) -> None:
        point = Point(step, step / self.steps_per_epoch, self.seconds, value)
        self.points.setdefault(name, []).append(point)

    def latest(self) -> dict[str, float]:
        return {name: points[-1].value for name, points in self.points.items() if points}

    def summary(self, step: int) -> dict[str, Any]:
        """The numbers metrics.json reports for a run that stopped at ``step``."""
        out: dict[str, Any] = {"steps": step, "epochs": round(step / self.steps_per_epoch, 4)}
        out["wall_seconds"] = round(self.seconds, 3)
        out["seconds_per_step"] = round(out["wall_seconds"] / step, 6) if step else None
        for name, points in self.points.items():
            out[f"final_{name}"] = points[-1].value if points else None
            if name != "train_loss":
                pick = max if self.goals[name] == "max" else min
                best = pick(points, key=lambda p: p.value) if points else None
                out[f"best_{name}"] = best.value if best else None
                out[f"best_{name}_step"] = best.step if best else None
        out["convergence"] = {  # a target for a metric this run lacks (no val split) stays null
            name: {f"{t:g}": self._first_reach(name, t) for t in values}
            for name, values in self.targets.items()
        }
        out["auc_log10_train_loss"] = auc_log10(self.points["train_loss"])
        return out

    def _first_reach(self, name: str, target: float) -> dict[str, float] | None:
        if name not in self.goals:
            return None
        return first_reach(self.points[name], target, self.goals[name])

    def state_dict(self) -> dict[str, Any]:
        return {
            "history": {k: [dataclasses.astuple(p) for p in v] for k, v in self.points.items()},
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.points = {k: [Point(*p) for p in v] for k, v in state["history"].items()}
        self.start = time.perf_counter() - state["seconds"]
