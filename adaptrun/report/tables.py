"""The papers' tables from a grid of runs: a metric's mean +/- std over seeds or folds
(best per row marked), and epochs / steps / seconds to each convergence target."""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaptrun.report.runs import Cell, Grid


def primary_metric(grid: Grid) -> str:
    """``test_acc`` for classification sweeps, ``test_rel_l2`` for regression and PINNs."""
    keys = {
        k for row in grid.cells.values() for c in row.values() for r in c.runs for k in r.metrics
    }
    for metric in ("test_acc", "test_rel_l2", "test_loss"):
        if f"final_{metric}" in keys:
            return metric
    return "train_loss"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def values(cell: Cell, key: str) -> list[float]:
    """``key`` from each completed run of the cell that has a finite number for it."""
    found = [r.metrics.get(key) for r in cell.with_status("completed")]
    return [float(v) for v in found if isinstance(v, (int, float)) and math.isfinite(v)]


def metric_rows(grid: Grid, key: str) -> list[dict[str, Any]]:
    """One record per cell: mean, std, counts, and whether it is the row's best."""
    records = []
    pick = max if grid.goal(key) == "max" else min
    for row, cells in grid.cells.items():
        stats = {col: values(cell, key) for col, cell in cells.items()}
        means = {col: mean_std(v)[0] for col, v in stats.items() if v}
        best = pick(means.values()) if means else None
        for col, cell in cells.items():
            mean, std = mean_std(stats[col]) if stats[col] else (None, None)
            records.append(
                {
                    "row": row,
                    "column": col,
                    "mean": mean,
                    "std": std,
                    "runs": len(cell.runs),
                    "completed": len(stats[col]),
                    "not_finished": cell.not_finished,
                    "best": mean is not None and mean == best,
                }
            )
    return records


def markdown_metric_table(grid: Grid, key: str) -> str:
    """Rows model/dataset, columns activation; ``mean ± std (n)``, the row's best in bold."""
    records = {(r["row"], r["column"]): r for r in metric_rows(grid, key)}
    columns = grid.columns
    lines = [
        f"{key}: mean ± std over seeds/folds (n = completed runs); "
        f"best per row in bold ({grid.goal(key)} is better)",
        "",
        "| " + " | ".join(["run", *columns]) + " |",
        "|" + "---|" * (len(columns) + 1),
    ]
    for row in grid.cells:
        cells = []
        for col in columns:
            rec = records.get((row, col))
            cells.append(_metric_cell(rec) if rec else "not run")
        lines.append("| " + " | ".join([row, *cells]) + " |")
    return "\n".join(lines) + "\n"


def _metric_cell(rec: dict[str, Any]) -> str:
    text = (
        "—"
        if rec["mean"] is None
        else f"{rec['mean']:.4f} ± {rec['std']:.4f} (n={rec['completed']})"
    )
    if rec["best"]:
        text = f"**{text}**"
    return f"{text} [{rec['not_finished']}]" if rec["not_finished"] else text


def convergence_rows(grid: Grid) -> list[dict[str, Any]]:
    """Per cell, metric and target: how many runs reached it and the mean epochs, steps
    and seconds they took (a run that never reached it is counted, not averaged)."""
    records = []
    for row, cells in grid.cells.items():
        for col, cell in cells.items():
            done = cell.with_status("completed")
            targets = {
                (m, t)
                for r in done
                for m, ts in r.metrics.get("convergence", {}).items()
                for t in ts
            }
            for metric, target in sorted(targets, key=lambda mt: _target_order(grid, *mt)):
                reached = [
                    r.metrics["convergence"][metric][target]
                    for r in done
                    if (r.metrics["convergence"].get(metric) or {}).get(target)
                ]
                record: dict[str, Any] = {
                    "row": row,
                    "column": col,
                    "metric": metric,
                    "target": target,
                    "reached": len(reached),
                    "completed": len(done),
                    "not_finished": cell.not_finished,
                }
                for unit in ("epoch", "step", "seconds"):
                    found = [float(p[unit]) for p in reached]
                    record[f"{unit}_mean"] = statistics.fmean(found) if found else None
                records.append(record)
    return records


def _target_order(grid: Grid, metric: str, target: str) -> tuple[str, float]:
    """Easiest target first: ascending accuracies, descending losses."""
    return metric, float(target) if grid.goal(metric) == "max" else -float(target)


def markdown_convergence_tables(grid: Grid) -> str:
    """One table per metric and target; a cell reads ``epochs / steps / seconds``."""
    records = convergence_rows(grid)
    columns = grid.columns
    out = []
    for metric, target in dict.fromkeys((r["metric"], r["target"]) for r in records):
        sign = "≥" if grid.goal(metric) == "max" else "≤"
        out += [
            f"### {metric} {sign} {target}: mean epochs / steps / seconds to reach it",
            "",
            "| " + " | ".join(["run", *columns]) + " |",
            "|" + "---|" * (len(columns) + 1),
        ]
        chosen = {
            (r["row"], r["column"]): r
            for r in records
            if (r["metric"], r["target"]) == (metric, target)
        }
        for row in grid.cells:
            cells = [_convergence_cell(chosen.get((row, col))) for col in columns]
            out.append("| " + " | ".join([row, *cells]) + " |")
        out.append("")
    return "\n".join(out)


def _convergence_cell(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "not run"
    if rec["reached"] == 0:
        text = f"not reached (0 of {rec['completed']})" if rec["completed"] else "—"
    else:
        text = f"{rec['epoch_mean']:.3g} / {rec['step_mean']:.0f} / {rec['seconds_mean']:.3g}s"
        if rec["reached"] < rec["completed"]:
            text += f" ({rec['reached']} of {rec['completed']})"
    return f"{text} [{rec['not_finished']}]" if rec["not_finished"] else text


def write_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        if not records:
            return
        writer = csv.DictWriter(f, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
