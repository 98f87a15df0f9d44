"""Whether a difference between columns is real: the mean's 95% confidence interval over
seeds or folds; each column against the row's baseline by a paired test where their runs
pair up by seed (every column's seed draws the same data and initial weights), Welch's
where they do not; Holm's correction over a table's comparisons; the probability of
improvement with a bootstrap interval; robust centres (median, interquartile mean). scipy
does the statistics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Comparison:
    """One column against its baseline. ``test``: ``paired t`` (with Wilcoxon's signed-rank
    beside it), ``Welch`` (runs that do not pair up), or ``none`` (too few runs)."""

    test: str
    p: float
    wilcoxon_p: float
    pairs: int
    improvement: float  # P(a run of the column beats the baseline's), ties counting half
    improvement_low: float
    improvement_high: float


def compare(
    column: Mapping[Any, float], baseline: Mapping[Any, float], goal: str = "max"
) -> Comparison:
    """``column`` and ``baseline``: each run's value by its replicate (seed, fold). Paired
    when every replicate of either side is on both (and there are two or more): the
    same seed then drew the same data and initial weights for both."""
    if set(column) == set(baseline) and len(column) >= 2:
        keys = sorted(column, key=str)
        a = np.array([column[k] for k in keys], dtype=float)
        b = np.array([baseline[k] for k in keys], dtype=float)
        diff = a - b
        p = float(stats.ttest_rel(a, b).pvalue) if np.ptp(diff) > 0 else _constant_p(diff)
        wilcoxon = float(stats.wilcoxon(a, b).pvalue) if np.any(diff != 0) else 1.0
        share, low, high = _improvement((diff,), lambda d: _won(d, goal), paired=True)
        return Comparison("paired t", p, wilcoxon, len(keys), share, low, high)
    a = np.array(list(column.values()), dtype=float)
    b = np.array(list(baseline.values()), dtype=float)
    if len(a) < 2 or len(b) < 2:
        return Comparison("none", math.nan, math.nan, 0, math.nan, math.nan, math.nan)
    p = welch_p(list(a), list(b))
    every = lambda x, y: _won(np.subtract.outer(x, y), goal)  # noqa: E731 (each pair of runs)
    share, low, high = _improvement((a, b), every, paired=False)
    return Comparison("Welch", p, math.nan, 0, share, low, high)


def _constant_p(diff: np.ndarray) -> float:
    """Every pair differs by the same amount: no spread to test against; 1 when that
    amount is 0, else the difference is certain (as a t statistic it would be infinite)."""
    return 1.0 if diff[0] == 0 else 0.0


def _won(diff: np.ndarray, goal: str) -> float:
    """The share of differences (column minus baseline) the column wins; a tie is half."""
    sign = np.sign(diff) if goal == "max" else -np.sign(diff)
    return float(np.mean((sign > 0) + 0.5 * (sign == 0)))


def _improvement(
    samples: tuple[np.ndarray, ...], statistic: Any, paired: bool
) -> tuple[float, float, float]:
    """The statistic and its 95% percentile-bootstrap interval (scipy; a fixed seed, so
    a report reads the same each time it is written)."""
    share = float(statistic(*samples))
    if all(np.ptp(s) == 0 for s in samples):
        return share, share, share  # no spread to resample
    result = stats.bootstrap(
        samples,
        statistic,
        paired=paired,
        vectorized=False,
        n_resamples=2000,
        confidence_level=LEVEL,
        method="percentile",
        rng=np.random.default_rng(0),
    )
    low, high = result.confidence_interval
    return share, float(low), float(high)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (NaN stays NaN, and is not
    counted in the family). scipy has only Benjamini-Hochberg (false_discovery_control),
    which controls another error rate; Holm controls the chance of any false claim."""
    finite = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        adjusted[i] = running
    return adjusted


def centres(values: Sequence[float]) -> tuple[float, float]:
    """The median and the interquartile mean (the mean of the middle half, scipy's
    trim_mean at 25%): centres one diverging seed cannot drag."""
    if not len(values):
        return math.nan, math.nan
    array = np.asarray(values, dtype=float)
    return float(np.median(array)), float(stats.trim_mean(array, 0.25))


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
