"""Training loss against epochs on a log scale with a +/- 2 std band over seeds, one
panel per row of the table (as in the locally-adaptive paper's benchmark figures)."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from tbparse import SummaryReader

from adaptrun.report.runs import Grid, Run

TAG = "train/loss"
log = logging.getLogger(__name__)


def loss_curve(run: Run) -> tuple[np.ndarray, np.ndarray] | None:
    """(epochs, training loss) from the run's TensorBoard events, or None if it has none,
    or if its events are damaged: unreadable, or ending well before the steps its
    metrics.json says it trained (one short curve would cut the band of its whole cell).
    A damaged run is named in the log and left out of its cell's curve."""
    try:
        with warnings.catch_warnings():  # tbparse uses a pandas keyword pandas 3.1 deprecates
            warnings.filterwarnings("ignore", message="The inplace keyword")
            scalars = SummaryReader(str(run.folder), event_types={"scalars"}).scalars
    except Exception as exc:
        log.warning("the events of %s cannot be read (%s); its curve is left out", run.folder, exc)
        return None
    if scalars.empty:
        return None
    curve = scalars[scalars["tag"] == TAG].sort_values("step")
    if curve.empty:
        return None
    steps, epochs = run.metrics.get("steps"), run.metrics.get("epochs")
    every = run.config.get("trainer.log_every") or 1
    last = int(curve["step"].iloc[-1])
    if isinstance(steps, int) and isinstance(every, int) and last < steps - every:
        log.warning(
            "the events of %s end at step %d of %d (a damaged event file?); its curve is left "
            "out of the plot",
            run.folder,
            last,
            steps,
        )
        return None
    per_step = epochs / steps if steps and epochs else 1.0
    return curve["step"].to_numpy() * per_step, curve["value"].to_numpy()


def band(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Epochs all curves share, and the mean and std of log10(loss) over curves there.

    On a log axis the band is taken in log space: a linear mean - 2 std would go below
    zero for any spread-out start and cannot be drawn.
    """
    shared = curves[0][0]
    for x, _ in curves[1:]:
        shared = np.intersect1d(shared, x)
    logs = np.log10(np.stack([np.maximum(y[np.isin(x, shared)], 1e-30) for x, y in curves]))
    std = logs.std(0, ddof=1) if len(logs) > 1 else np.zeros(len(shared))
    return shared, logs.mean(0), std


def plot_losses(grid: Grid, path: Path) -> Path:
    """Write the figure to ``path``; runs that did not complete are named in the legend."""
    rows = list(grid.cells)
    cols = min(3, len(rows))
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.8 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows, strict=False):
        for column, cell in grid.cells[row].items():
            curves = [c for r in cell.with_status("completed") if (c := loss_curve(r)) is not None]
            flags = cell.not_finished
            name = f"{column} (n={len(curves)}{'; ' + flags if flags else ''})"
            if not curves:
                ax.plot(
                    [],
                    [],
                    linestyle="none",
                    marker="x",
                    label=f"{column}: no completed run ({flags})",
                )
                continue
            x, mean, std = band(curves)
            (line,) = ax.plot(x, 10**mean, label=name, linewidth=1.2)
            low, high = 10 ** (mean - 2 * std), 10 ** (mean + 2 * std)
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
        ax.set_yscale("log")
        ax.set_title(row, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    fig.suptitle(
        "training loss: geometric mean, band ± 2 std of log10 over seeds/folds", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_distribution(
    grid: Grid, key: str, path: Path, published: dict[tuple[str, str], float] | None = None
) -> Path:
    """Each column's values of ``key`` over seeds/folds, one panel per row: every run as a
    point over its box (quartiles, whiskers 1.5 IQR), published values as red crosses."""
    rows = list(grid.cells)
    cols = min(3, len(rows))
    nrows = math.ceil(len(rows) / cols)
    width = max(5.0, 1.1 * len(grid.columns) + 1.5)
    fig, axes = plt.subplots(nrows, cols, figsize=(width * cols, 3.8 * nrows), squeeze=False)
    rng = np.random.default_rng(0)  # the jitter only: the same picture every time
    for ax, row in zip(axes.flat, rows, strict=False):
        columns = [c for c in grid.columns if c in grid.cells[row]]
        values = [
            [
                float(run.metrics[key])
                for run in grid.cells[row][c].with_status("completed")
                if isinstance(run.metrics.get(key), (int, float))
            ]
            for c in columns
        ]
        positions = np.arange(1, len(columns) + 1)
        filled = [(p, v) for p, v in zip(positions, values, strict=True) if v]
        if filled:
            ax.boxplot(
                [v for _, v in filled],
                positions=[p for p, _ in filled],
                widths=0.5,
                showfliers=False,
            )
        for p, v in filled:
            ax.scatter(p + rng.uniform(-0.12, 0.12, len(v)), v, s=14, alpha=0.7, zorder=3)
        marked = False
        for p, c in zip(positions, columns, strict=True):
            if published and (row, c) in published:
                ax.scatter(
                    [p], [published[(row, c)]], marker="x", color="red", s=60, zorder=4,
                    label=None if marked else "published",
                )  # fmt: skip
                marked = True
        ax.set_xticks(positions, columns, rotation=30, ha="right", fontsize=8)
        ax.set_title(row, fontsize=10)
        ax.set_ylabel(key)
        ax.grid(True, axis="y", alpha=0.3)
        if marked:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    fig.suptitle(f"{key}: each run (points) over the box of its column", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
