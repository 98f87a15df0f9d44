"""The report's figures: curves over seeds as small multiples (one panel per row and per
value of the swept activation settings, e.g. per n), each run's final metric, and the
learned activations side by side. One colour per activation in every figure, from a
colour-blind-safe palette; the legend sits outside the data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D

from adaptrun.report.curves import Events, band, resampled
from adaptrun.report.runs import Cell, Grid, label

# Okabe and Ito's palette (distinct under every common colour-vision deficiency); past
# eight activations the colours repeat with another dash
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
DASHES: tuple[Any, ...] = ("-", "--", ":", "-.")
SPAN_FOR_LOG = 100.0  # a metric spanning two decades or more is drawn on a log axis
MAX_LAYERS = 4  # learned activations: the first, the last and evenly spaced ones between


def styles(grid: Grid) -> dict[str, tuple[str, Any]]:
    """Activation name -> (colour, dash), in the grid's column order: the same activation
    looks the same in every figure of a report."""
    names: dict[str, None] = {}
    for column in grid.columns:
        for row in grid.cells.values():
            if column in row:
                names.setdefault(activation(row[column]))
    return {
        name: (PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)])
        for i, name in enumerate(names)
    }


def activation(cell: Cell) -> str:
    return str(cell.runs[0].config.get("activation.name"))


@dataclass
class Panel:
    """One row of the table at one value of the swept activation settings: activation
    name -> its cell. A cell without those settings (the fixed baseline, whose n applies
    to nothing) is in every panel of its row, once."""

    title: str
    lines: dict[str, Cell]


def panels(grid: Grid) -> list[Panel]:
    facet_keys = grid.column_keys[1:]
    found = []
    for row, cells in grid.cells.items():
        facets: dict[str, dict[str, Cell]] = {}
        everywhere: dict[str, Cell] = {}
        for cell in cells.values():
            config = cell.runs[0].config
            present = [k for k in facet_keys if k in config]
            if present:
                facet = label(config, present, 0).strip(" ()")
                facets.setdefault(facet, {})[activation(cell)] = cell
            else:
                everywhere[activation(cell)] = cell
        if not facets:
            found.append(Panel(row, everywhere))
        for facet, lines in facets.items():
            found.append(Panel(f"{row}, {facet}", {**lines, **everywhere}))
    return found


def _counts(panel: Panel, drawn: dict[str, int]) -> str:
    """How many runs each line averages, and what did not finish: one line under the
    panel's title, e.g. ``3 runs per line`` or ``global: 2 runs, 1 failed``."""
    flags = {name: cell.not_finished for name, cell in panel.lines.items()}
    if len(set(drawn.values())) <= 1 and not any(flags.values()):
        k = next(iter(drawn.values()), 0)
        return f"{k} run{'s' if k != 1 else ''} per line"
    return "; ".join(
        f"{name}: {drawn.get(name, 0)} runs" + (f", {flags[name]}" if flags[name] else "")
        for name in panel.lines
    )


def _layout(count: int, width: float = 4.6, height: float = 3.4) -> tuple[Any, list[Any]]:
    cols = min(3, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[count:]:
        ax.axis("off")
    return fig, flat[:count]


def _finish(fig: Any, grid: Grid, shown: set[str], title: str, path: Path) -> Path:
    """The shared legend outside the panels, the title, the file."""
    handles = [
        Line2D([], [], color=colour, linestyle=dash, lw=1.6, label=name)
        for name, (colour, dash) in styles(grid).items()
        if name in shown
    ]
    if handles:
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
                   title="activation", title_fontsize=8, frameon=False)  # fmt: skip
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def spans_decades(values: np.ndarray) -> bool:
    """Whether a metric is drawn on a log axis: all positive and spanning two decades."""
    finite = values[np.isfinite(values)]
    return bool(len(finite)) and finite.min() > 0 and finite.max() / finite.min() >= SPAN_FOR_LOG


def plot_curves(
    grid: Grid, events: Events, tag: str, path: Path, what: str, x: str = "step"
) -> Path | None:
    """``tag``'s curve per activation, mean and band over seeds, one panel per row and
    swept value; against steps, or seconds since each run's first logged point (only
    meaningful for runs timed side by side: the caller decides). None: no run logged it."""
    every = panels(grid)
    data: list[dict[str, list[tuple[np.ndarray, np.ndarray]]]] = []
    for panel in every:
        lines = {}
        for name, cell in panel.lines.items():
            read = [events.curve(r, tag, x) for r in cell.with_status("completed")]
            lines[name] = [c for c in read if c is not None and len(c[0])]
        data.append(lines)
    values = [y for lines in data for curves in lines.values() for _, y in curves]
    if not values:
        return None
    log_scale = spans_decades(np.concatenate(values))
    fig, axes = _layout(len(every))
    look = styles(grid)
    shown: set[str] = set()
    for ax, panel, lines in zip(axes, every, data, strict=True):
        for name, curves in lines.items():
            if not curves:
                continue
            colour, dash = look[name]
            xs, mean, low, high = band(resampled(curves) if x == "seconds" else curves, log_scale)
            ax.plot(xs, mean, color=colour, linestyle=dash, lw=1.4)
            ax.fill_between(xs, low, high, color=colour, alpha=0.18, lw=0)
            shown.add(name)
        if log_scale:
            ax.set_yscale("log")
        counts = _counts(panel, {name: len(c) for name, c in lines.items()})
        ax.set_title(f"{panel.title}\n{counts}", fontsize=9)
        ax.set_xlabel("step" if x == "step" else "seconds since the run's first point")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    stat = "geometric mean, band ± 2 std of log10" if log_scale else "mean, band ± 2 std"
    return _finish(fig, grid, shown, f"{what}: {stat} over seeds/folds", path)


def plot_distribution(
    grid: Grid, key: str, path: Path, published: dict[tuple[str, str], float] | None = None
) -> Path:
    """Each column's values of ``key`` over seeds/folds, one panel per row: every run as a
    point (its activation's colour) over its box (quartiles, whiskers 1.5 IQR), published
    values as red crosses."""
    rows = list(grid.cells)
    fig, axes = _layout(len(rows), width=max(4.6, 0.9 * len(grid.columns) + 1.5), height=3.8)
    look = styles(grid)
    rng = np.random.default_rng(0)  # the jitter only: the same picture every time
    shown: set[str] = set()
    for ax, row in zip(axes, rows, strict=True):
        columns = [c for c in grid.columns if c in grid.cells[row]]
        positions = np.arange(1, len(columns) + 1)
        marked = False
        for p, c in zip(positions, columns, strict=True):
            cell = grid.cells[row][c]
            values = [
                float(run.metrics[key])
                for run in cell.with_status("completed")
                if isinstance(run.metrics.get(key), (int, float))
            ]
            if values:
                ax.boxplot([values], positions=[p], widths=0.5, showfliers=False)
                colour = look[activation(cell)][0]
                ax.scatter(p + rng.uniform(-0.12, 0.12, len(values)), values, s=14, alpha=0.8,
                           color=colour, zorder=3)  # fmt: skip
                shown.add(activation(cell))
            if published and (row, c) in published:
                ax.scatter([p], [published[(row, c)]], marker="x", color="red", s=60, zorder=4,
                           label=None if marked else "published")  # fmt: skip
                marked = True
        ax.set_xticks(positions, columns, rotation=30, ha="right", fontsize=8)
        ax.set_title(row, fontsize=10)
        ax.set_ylabel(key)
        ax.grid(True, axis="y", alpha=0.3)
        if marked:
            ax.legend(fontsize=7, loc="best")
    return _finish(fig, grid, shown, f"{key}: each run (points) over the box of its column", path)


def _layers(names: list[str]) -> list[str]:
    if len(names) <= MAX_LAYERS:
        return names
    picks = np.linspace(0, len(names) - 1, MAX_LAYERS).round().astype(int)
    return [names[i] for i in dict.fromkeys(picks.tolist())]


def plot_learned(grid: Grid, path: Path) -> Path | None:
    """Each activation's learned function at the end of training, per layer (columns) and
    panel (rows): the mean over its units, averaged over seeds, and the range its units
    span; from metrics.json's ``learned_activation``. None: no run learned one."""
    every = panels(grid)
    layers: dict[str, None] = {}
    for panel in every:
        for cell in panel.lines.values():
            for run in cell.with_status("completed"):
                layers.update(dict.fromkeys(run.metrics.get("learned_activation") or {}))
    chosen = _layers(list(layers))
    if not chosen:
        return None
    look = styles(grid)
    fig, axes = plt.subplots(len(every), len(chosen), figsize=(3.4 * len(chosen), 2.9 * len(every)),
                             squeeze=False)  # fmt: skip
    shown: set[str] = set()
    for i, panel in enumerate(every):
        for j, layer in enumerate(chosen):
            ax = axes[i][j]
            for name, cell in panel.lines.items():
                got = [
                    r.metrics["learned_activation"][layer]
                    for r in cell.with_status("completed")
                    if layer in (r.metrics.get("learned_activation") or {})
                ]
                if not got:
                    continue
                colour, dash = look[name]
                xs = np.asarray(got[0]["x"])
                mean = np.mean([g["mean"] for g in got], axis=0)
                ax.plot(xs, mean, color=colour, linestyle=dash, lw=1.4)
                low = np.mean([g["min"] for g in got], axis=0)
                high = np.mean([g["max"] for g in got], axis=0)
                ax.fill_between(xs, low, high, color=colour, alpha=0.15, lw=0)
                shown.add(name)
            ax.axhline(0, color="grey", lw=0.5)
            ax.axvline(0, color="grey", lw=0.5)
            where = f"{panel.title}\nlayer {layer}" if j == 0 else f"layer {layer}"
            ax.set_title(where, fontsize=8)
            ax.set_xlabel("input")
    title = ("learned activations at the end of training: mean over units (line) and the "
             "units' range (band), averaged over seeds")  # fmt: skip
    return _finish(fig, grid, shown, title, path)
