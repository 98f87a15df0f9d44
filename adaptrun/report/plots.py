"""Training loss against epochs on a log scale, mean and a +/- 2 std band over seeds,
one panel per row of the table (as in the locally-adaptive paper's benchmark figures)."""

from __future__ import annotations

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


def loss_curve(run: Run) -> tuple[np.ndarray, np.ndarray] | None:
    """(epochs, training loss) from the run's TensorBoard events, or None if it has none."""
    with warnings.catch_warnings():  # tbparse uses a pandas keyword pandas 3.1 deprecates
        warnings.filterwarnings("ignore", message="The inplace keyword")
        scalars = SummaryReader(str(run.folder), event_types={"scalars"}).scalars
    if scalars.empty:
        return None
    curve = scalars[scalars["tag"] == TAG].sort_values("step")
    if curve.empty:
        return None
    steps, epochs = run.metrics.get("steps"), run.metrics.get("epochs")
    per_step = epochs / steps if steps and epochs else 1.0
    return curve["step"].to_numpy() * per_step, curve["value"].to_numpy()


def band(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Mean and std over curves at the epochs all of them share."""
    shared = curves[0][0]
    for x, _ in curves[1:]:
        shared = np.intersect1d(shared, x)
    ys = np.stack([y[np.isin(x, shared)] for x, y in curves])
    return shared, ys.mean(0), ys.std(0, ddof=1) if len(ys) > 1 else np.zeros(len(shared))


def plot_losses(grid: Grid, path: Path) -> Path:
    """Write the figure to ``path``; runs that did not complete are named in the legend."""
    rows = list(grid.cells)
    cols = min(3, len(rows))
    nrows = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.8 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows, strict=False):
        for column, cell in grid.cells[row].items():
            curves = [c for r in cell.with_status("completed") if (c := loss_curve(r)) is not None]
            flags = ", ".join(f"{n} {s}" for s, n in sorted(cell.not_finished.items()))
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
            (line,) = ax.plot(x, mean, label=name, linewidth=1.2)
            low = np.clip(mean - 2 * std, mean.min() * 1e-3 if mean.min() > 0 else 1e-12, None)
            ax.fill_between(x, low, mean + 2 * std, color=line.get_color(), alpha=0.2)
        ax.set_yscale("log")
        ax.set_title(row, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    fig.suptitle("training loss: mean ± 2 std over seeds/folds", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
