"""Whether a difference between columns is real: the mean's 95% confidence interval over
seeds or folds, Welch's t-test of each column against the row's baseline, and time to
each target as the median relative to the baseline's. scipy does the statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from adaptrun.report.runs import Grid

LEVEL = 0.95


def interval(values: Sequence[float]) -> tuple[float, float]:
    """The Student-t confidence interval of the mean; NaN for fewer than two values."""
    array = np.asarray(values, dtype=float)
    if len(array) < 2:
        return math.nan, math.nan
    if np.ptp(array) == 0:  # no spread: scipy would return NaN for a zero scale
        return float(array[0]), float(array[0])
    low, high = stats.t.interval(LEVEL, len(array) - 1, loc=array.mean(), scale=stats.sem(array))
    return float(low), float(high)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of Welch's t-test (unequal variances); NaN below two values a
    side or when neither side varies."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def baseline_column(grid: Grid, requested: str | None = None) -> str | None:
    """``requested`` (a column label), else the first column whose runs train no
    activation parameter (a fixed activation), else None (no tests)."""
    if requested is not None:
        if requested not in grid.columns:
            raise ValueError(
                f"--baseline {requested!r} is not a column; columns: {', '.join(grid.columns)}"
            )
        return requested
    for column in grid.columns:
        counts = [
            run.metrics.get("params", {}).get("activation")
            for cells in grid.cells.values()
            if column in cells
            for run in cells[column].with_status("completed")
        ]
        if counts and all(c == 0 for c in counts):
            return column
    return None
