"""``adaptrun-report --cost``: each column's training step timed side by side.

The seconds a sweep's runs recorded were measured in separate jobs, one after another or
beside other work, and do not compare. Here every cell's configuration (that of its first
run) is built as its run builds it and its step is timed in this one process on this
device, the cells taking turns round after round (the benchmarks' way), so that a slower
machine moment falls on all of them alike. A ratio to the row's baseline is taken within
each round; the table gives its median and its range over the rounds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch
from omegaconf import OmegaConf

from adaptrun.core.errors import describe_error
from adaptrun.report.runs import Grid
from adaptrun.report.tables import CELL, shaped_markdown
from adaptrun.runner.assemble import timed_step

COLUMNS = [*CELL, "ms_per_step", "vs_baseline", "vs_baseline_low", "vs_baseline_high", "rounds"]


def _timed(step: Callable[[], None], device: str, steps: int) -> float:
    """Seconds per step over ``steps`` steps, the device's queue drained at both ends."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - start) / steps


def measure_cost(
    grid: Grid, baseline: str | None, steps: int = 10, rounds: int = 5
) -> tuple[pd.DataFrame, list[str]]:
    """Per cell: median milliseconds per step and, per row, the ratio to the baseline
    column (median and range over rounds). Returns the table and one note per cell that
    could not be built (its data missing, say)."""
    steps_of: dict[tuple[str, str], tuple[Callable[[], None], str]] = {}
    notes = []
    for row, cells in grid.cells.items():
        for column, cell in cells.items():
            run = next((r for r in cell.runs if (r.folder / ".hydra/config.yaml").exists()), None)
            if run is None:
                continue
            cfg = OmegaConf.load(run.folder / ".hydra" / "config.yaml")
            try:
                step, device = timed_step(cfg)  # type: ignore[arg-type]
                step()  # first call: data to the device, kernels chosen, compiled if asked
                step()
            except Exception as exc:
                notes.append(f"{row} / {column}: not measured ({describe_error(exc)})")
                continue
            steps_of[(row, column)] = (step, device)
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in steps_of}
    for _ in range(rounds):  # every cell once a round: the machine's moments fall on all
        for key, (step, device) in steps_of.items():
            seconds[key].append(_timed(step, device, steps))
    records = []
    for (row, column), times in seconds.items():
        base = seconds.get((row, baseline)) if baseline else None
        ratios = [t / b for t, b in zip(times, base, strict=True)] if base else []
        series = pd.Series(ratios, dtype=float)
        records.append(
            {
                "row": row,
                "column": column,
                "ms_per_step": 1000 * pd.Series(times).median(),
                "vs_baseline": series.median() if ratios else math.nan,
                "vs_baseline_low": series.min() if ratios else math.nan,
                "vs_baseline_high": series.max() if ratios else math.nan,
                "rounds": rounds,
            }
        )
    return pd.DataFrame(records, columns=COLUMNS), notes


def markdown_measured_cost(grid: Grid, table: pd.DataFrame, notes: list[str], steps: int) -> str:
    """The measured table: ms/step and the ratio to the baseline with its range."""
    table = table.assign(text=[_cell(r) for r in table.to_dict("records")])
    rounds = int(table["rounds"].iloc[0]) if len(table) else 0
    head = (
        f"Each cell's step timed in this process, the cells taking turns ({rounds} rounds of "
        f"{steps} steps each): median milliseconds per step, and the ratio to the row's "
        "baseline (median [lowest, highest] over the rounds)."
    )
    return "\n\n".join([head, shaped_markdown(grid, table), *(f"- {n}" for n in notes)]) + "\n"


def _cell(rec: dict[str, Any]) -> str:
    text = f"{rec['ms_per_step']:.3g} ms/step"
    if math.isnan(rec["vs_baseline"]):
        return text
    low, high = rec["vs_baseline_low"], rec["vs_baseline_high"]
    return f"{text}, {rec['vs_baseline']:.2f}x [{low:.2f}, {high:.2f}]"
