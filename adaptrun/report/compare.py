"""Each column against its row's baseline: time to each convergence target as medians
relative to the baseline's (the papers' "converges faster", as a number), and the cost
(activation parameters, seconds per step); and the published values a preset carries
(``reference:``) beside ours."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from adaptrun.report.runs import SEPARATELY_TIMED, Grid
from adaptrun.report.tables import CELL, convergence_table, metric_table, runs, shaped_markdown


def speed_table(grid: Grid, baseline: str) -> pd.DataFrame:
    """Per cell, metric and target: median steps and seconds of the runs that reached it,
    and each as a ratio to the baseline column's median in the same row (< 1: faster)."""
    table = convergence_table(grid)
    keys = ["row", "metric", "target"]
    timed = "seconds_median" in table  # the runs were timed together (Grid.timed_together)
    units = ["step_median", "seconds_median"] if timed else ["step_median"]
    base = table[table["column"] == baseline][[*keys, *units]]
    base = base.rename(columns={"step_median": "base_steps", "seconds_median": "base_seconds"})
    table = table.merge(base, on=keys, how="left")
    table["steps_vs_baseline"] = table["step_median"] / table["base_steps"]
    columns = [*CELL, "metric", "target", "reached", "completed", "step_median"]
    if not timed:
        return table[[*columns, "steps_vs_baseline"]]
    table["seconds_vs_baseline"] = table["seconds_median"] / table["base_seconds"]
    return table[[*columns, "seconds_median", "steps_vs_baseline", "seconds_vs_baseline"]]


def markdown_speed_tables(grid: Grid, baseline: str) -> str:
    """One table per metric and target: median steps (and seconds, where the runs were
    timed together) relative to the baseline."""
    table = speed_table(grid, baseline)
    units = "steps / seconds" if "seconds_median" in table else "steps"
    out = [] if "seconds_median" in table else [SEPARATELY_TIMED, ""]
    for (metric, target), part in table.groupby(["metric", "target"], sort=False):
        sign = "≥" if grid.goal(metric) == "max" else "≤"
        part = part.assign(text=[_speed_cell(r, baseline) for r in part.to_dict("records")])
        out += [
            f"### {metric} {sign} {target}: median {units} to reach it, relative to "
            f"{baseline} (< 1: faster)",
            "",
            shaped_markdown(grid, part),
            "",
        ]
    return "\n".join(out)


def _speed_cell(rec: dict[str, Any], baseline: str) -> str:
    reached = f"({rec['reached']} of {rec['completed']})"
    if rec["reached"] == 0:
        return f"not reached {reached}" if rec["completed"] else "—"
    timed = "seconds_median" in rec
    if rec["column"] == baseline:
        seconds = f", {rec['seconds_median']:.3g}s" if timed else ""
        return f"baseline: {rec['step_median']:.0f} steps{seconds} {reached}"
    if math.isnan(rec["steps_vs_baseline"]):
        return f"{rec['step_median']:.0f} steps; the baseline never reached it {reached}"
    seconds = f", {rec['seconds_vs_baseline']:.2f}x seconds" if timed else ""
    return f"{rec['steps_vs_baseline']:.2f}x steps{seconds} {reached}"


def cost_table(grid: Grid, baseline: str | None) -> pd.DataFrame:
    """Per cell: trainable parameters (the activation's and the total), FLOPs per
    training step (as the runs counted them: matrix products and convolutions) and
    their ratio to the row's baseline, and, for runs timed in one job only, the median
    seconds per step and its ratio."""
    records = []
    for row, cells in grid.cells.items():
        for column, cell in cells.items():
            runs = cell.with_status("completed")

            params = [r.metrics.get("params", {}) for r in runs]
            records.append(
                {
                    "row": row,
                    "column": column,
                    "activation_params": _median([p.get("activation") for p in params]),
                    "total_params": _median([p.get("total") for p in params]),
                    "flops_per_step": _median([r.metrics.get("flops_per_step") for r in runs]),
                    "seconds_per_step": _median([r.metrics.get("seconds_per_step") for r in runs]),
                }
            )
    columns = ["activation_params", "total_params", "flops_per_step", "seconds_per_step"]
    table = pd.DataFrame(records, columns=[*CELL, *columns])
    base = table[table["column"] == baseline].set_index("row")
    table["flops_vs_baseline"] = table["flops_per_step"] / table["row"].map(base["flops_per_step"])
    if not grid.timed_together():
        return table.drop(columns="seconds_per_step")
    table["time_vs_baseline"] = table["seconds_per_step"] / table["row"].map(
        base["seconds_per_step"]
    )
    return table


def _median(values: list[Any]) -> float:
    """The median of the runs' recorded values (NaN where none recorded one)."""
    return float(pd.Series(values, dtype=float).median())


def markdown_cost_table(grid: Grid, baseline: str | None) -> str:
    table = cost_table(grid, baseline)
    table["text"] = [_cost_cell(r) for r in table.to_dict("records")]
    against = f" ({baseline} = 1)" if baseline else ""
    what = (
        "trainable parameters (the activation's / the total), GFLOPs per training step (a "
        f"forward and backward pass of one batch, as torch.utils.flop_counter counts them: "
        f"matrix products and convolutions, not elementwise work) relative to the "
        f"baseline{against}"
    )
    if "seconds_per_step" not in table:
        return f"{what}\n\n{shaped_markdown(grid, table)}\n\n{SEPARATELY_TIMED}\n"
    return (
        f"{what}; median milliseconds per training step, and that time relative to the "
        f"baseline\n\n{shaped_markdown(grid, table)}\n"
    )


def _cost_cell(rec: dict[str, Any]) -> str:
    params = rec["activation_params"]
    if math.isnan(params):
        return "—"
    text = f"{params:.0f} / {rec['total_params']:.0f} params"
    if not math.isnan(rec["flops_per_step"]):
        text += f", {rec['flops_per_step'] / 1e9:.3g} GFLOPs"
        if not math.isnan(rec["flops_vs_baseline"]):
            text += f" ({rec['flops_vs_baseline']:.2f}x)"
    if "seconds_per_step" in rec and not math.isnan(rec["seconds_per_step"]):
        text += f", {1000 * rec['seconds_per_step']:.3g} ms/step"
        ratio = rec["time_vs_baseline"]
        text += "" if math.isnan(ratio) else f" ({ratio:.2f}x)"
    return text


def reference_table(grid: Grid, key: str) -> pd.DataFrame:
    """Cells whose preset publishes a value of ``key`` (``reference.metric``), with it
    beside our mean and interval. A preset's ``reference:`` names the config values that
    pick an entry (``rows``, ``columns``: e.g. model.name, activation.name) and gives
    ``values[row value][column value]`` with its ``source``."""
    ours = metric_table(grid, key).set_index(CELL)
    records = []
    for row, cells in grid.cells.items():
        for column, cell in cells.items():
            config = next((r.config for r in cell.runs), {})
            if config.get("reference.metric") != key:
                continue
            picked = [config.get(config.get(f"reference.{k}") or "") for k in ("rows", "columns")]
            published = config.get(f"reference.values.{picked[0]}.{picked[1]}")
            if published is None:
                continue
            mine = ours.loc[(row, column)]
            records.append(
                {
                    "row": row,
                    "column": column,
                    "published": float(published),
                    "mean": mine["mean"],
                    "ci_low": mine["ci_low"],
                    "ci_high": mine["ci_high"],
                    "completed": mine["completed"],
                    "source": config.get("reference.source"),
                }
            )
    columns = [*CELL, "published", "mean", "ci_low", "ci_high", "completed", "source"]
    return pd.DataFrame(records, columns=columns)


def markdown_reference_table(grid: Grid, key: str) -> str:
    """The published values beside ours, or an empty string when no preset gives any."""
    table = reference_table(grid, key)
    if table.empty:
        return ""
    inside = [
        "—" if math.isnan(lo) else ("yes" if lo <= p <= hi else "no")
        for p, lo, hi in zip(table["published"], table["ci_low"], table["ci_high"], strict=True)
    ]
    shown = pd.DataFrame(
        {
            "run": table["row"],
            "column": table["column"],
            "published": table["published"].map(lambda v: f"{v:.4g}"),
            "ours: mean [95% CI] (n)": [
                _ours(m, lo, hi, n)
                for m, lo, hi, n in zip(
                    table["mean"],
                    table["ci_low"],
                    table["ci_high"],
                    table["completed"],
                    strict=True,
                )
            ],
            "published inside our interval": inside,
        }
    )
    sources = ", ".join(dict.fromkeys(s for s in table["source"] if s))
    return f"{key}; published in: {sources}\n\n{shown.to_markdown(index=False)}\n"


def _ours(mean: float, low: float, high: float, n: int) -> str:
    if math.isnan(mean):
        return "no completed run"
    spread = "no interval" if math.isnan(low) else f"[{low:.4g}, {high:.4g}]"
    return f"{mean:.4g} {spread} ({runs(n)})"
