"""Runs' scalar curves from their TensorBoard events, and their mean and band over seeds."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tbparse import SummaryReader

from adaptrun.report.runs import Run

log = logging.getLogger(__name__)
AXES = ("step", "seconds")  # what a curve can be drawn against


@dataclass
class Events:
    """Each run's scalars, read once per report (tbparse reads a whole event file)."""

    read: dict[str, pd.DataFrame | None] = field(default_factory=dict)

    def scalars(self, run: Run) -> pd.DataFrame | None:
        key = str(run.folder)
        if key not in self.read:
            self.read[key] = _scalars(run)
        return self.read[key]

    def curve(self, run: Run, tag: str, x: str = "step") -> tuple[np.ndarray, np.ndarray] | None:
        """(x, value) of ``tag``, against steps or against seconds since the run's first
        logged point; None if the run has none of it."""
        scalars = self.scalars(run)
        if scalars is None:
            return None
        curve = scalars[scalars["tag"] == tag].sort_values("step")
        if curve.empty:
            return None
        values = curve["value"].to_numpy(dtype=float)
        if x == "seconds":
            first = float(scalars["wall_time"].min())
            return curve["wall_time"].to_numpy(dtype=float) - first, values
        return curve["step"].to_numpy(dtype=float), values


def _scalars(run: Run) -> pd.DataFrame | None:
    """A run's scalars, or None if it has none, or if its events are damaged: unreadable,
    or ending well before the steps its metrics.json says it trained (one short curve
    would cut the band of its whole line). A damaged run is named in the log."""
    try:
        with warnings.catch_warnings():  # tbparse uses a pandas keyword pandas 3.1 deprecates
            warnings.filterwarnings("ignore", message="The inplace keyword")
            reader = SummaryReader(
                str(run.folder), event_types={"scalars"}, extra_columns={"wall_time"}
            )
            scalars = reader.scalars
    except Exception as exc:
        log.warning("the events of %s cannot be read (%s); its curve is left out", run.folder, exc)
        return None
    steps = run.metrics.get("steps")
    every = run.config.get("trainer.log_every") or 1
    logged = scalars[scalars["tag"] == "train/loss"] if not scalars.empty else scalars
    last = int(logged["step"].max()) if not logged.empty else 0
    if isinstance(steps, int) and isinstance(every, int) and last < steps - every:
        log.warning(
            "the events of %s end at step %d of %d (a damaged event file?); its curves are "
            "left out of the plots",
            run.folder,
            last,
            steps,
        )
        return None
    return None if scalars.empty else scalars


def band(
    curves: list[tuple[np.ndarray, np.ndarray]], log_scale: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, mean and the band mean -/+ 2 std over curves, at the points all of them share
    (steps: the points they all logged). On a log axis the statistics are taken of log10
    (a geometric mean): a linear mean - 2 std goes below zero for any spread-out start
    and cannot be drawn."""
    shared = curves[0][0]
    for x, _ in curves[1:]:
        shared = np.intersect1d(shared, x)
    ys = np.stack([y[np.isin(x, shared)][: len(shared)] for x, y in curves])
    if log_scale:
        ys = np.log10(np.maximum(ys, 1e-30))
    mean = ys.mean(0)
    std = ys.std(0, ddof=1) if len(ys) > 1 else np.zeros(len(shared))
    low, high = mean - 2 * std, mean + 2 * std
    if log_scale:
        return shared, 10**mean, 10**low, 10**high
    return shared, mean, low, high


def resampled(curves: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Curves against seconds on one shared grid (each run logged at its own times):
    interpolated over the span every curve covers."""
    end = min(x[-1] for x, _ in curves)
    grid = np.linspace(0.0, end, 100) if end > 0 else np.zeros(1)
    return [(grid, np.interp(grid, x, y)) for x, y in curves]
