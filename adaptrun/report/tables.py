"""The papers' tables from a grid of runs: a metric's mean, 95% interval and Welch's test
against the row's baseline over seeds or folds (best per row marked), and epochs / steps
/ seconds to each convergence target.

pandas computes the statistics (groupby), shapes the tables (pivot) and writes them
(to_csv, to_markdown); scipy the intervals and tests (report/stats.py)."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from adaptrun.report.runs import REPLICATE_KEYS, Grid
from adaptrun.report.stats import Comparison, centres, compare, holm, interval
from adaptrun.tasks import TASKS

CELL = ["row", "column"]


def primary_metric(grid: Grid) -> str:
    """The metric the runs' task declares it is compared by (``primary``: test accuracy
    for classification, test rel L2 for regression and PINNs), where the runs report it;
    else the training loss."""
    runs = [r for row in grid.cells.values() for c in row.values() for r in c.runs]
    keys = {k for r in runs for k in r.metrics}
    tasks = dict.fromkeys(str(r.config.get("task.name")) for r in runs)
    for name in tasks:
        if name in TASKS and f"final_{TASKS[name].primary}" in keys:
            return TASKS[name].primary
    return "train_loss"


def _cells(grid: Grid) -> pd.DataFrame:
    """Every cell, in the grid's order, with its run count and what did not finish."""
    rows = [
        {"row": row, "column": col, "runs": len(cell.runs), "not_finished": cell.not_finished}
        for row, cells in grid.cells.items()
        for col, cell in cells.items()
    ]
    return pd.DataFrame(rows, columns=[*CELL, "runs", "not_finished"])


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def metric_table(grid: Grid, key: str, baseline: str | None = None) -> pd.DataFrame:
    """One record per cell: mean, std (0 for one run), the mean's 95% interval, median and
    interquartile mean; against the row's ``baseline`` column: the test used (paired t
    where the runs pair up by seed and fold, else Welch), its p-value, Wilcoxon's (paired),
    Holm's adjustment over every comparison of the table, and the probability of
    improvement with its bootstrap interval; completed runs with the metric, runs, what
    did not finish, and whether it is the row's best."""
    values = pd.DataFrame(
        [
            {"row": row, "column": col, "value": _number(run.metrics.get(key)),
             "replicate": json.dumps([run.config.get(k) for k in REPLICATE_KEYS])}
            for row, cells in grid.cells.items()
            for col, cell in cells.items()
            for run in cell.with_status("completed")
        ],
        columns=[*CELL, "value", "replicate"],
    ).dropna()  # fmt: skip
    stats = values.groupby(CELL, sort=False)["value"].agg(["mean", "std", "count"])
    table = _cells(grid).merge(stats.reset_index(), on=CELL, how="left")
    table["std"] = table["std"].where(table["count"] != 1, 0.0)
    table["completed"] = table["count"].fillna(0).astype(int)
    goal = grid.goal(key)
    best = table.groupby("row", sort=False)["mean"].transform("max" if goal == "max" else "min")
    table["best"] = table["mean"].notna() & (table["mean"] == best)
    samples = {
        cell: _by_replicate(cell, list(group["replicate"]), list(group["value"]))
        for cell, group in values.groupby(CELL, sort=False)
    }
    cells = list(zip(table["row"], table["column"], strict=True))
    cis = [interval(list(samples.get(cell, {}).values())) for cell in cells]
    table["ci_low"], table["ci_high"] = [lo for lo, _ in cis], [hi for _, hi in cis]
    middle = [centres(list(samples.get(cell, {}).values())) for cell in cells]
    table["median"], table["iqm"] = [m for m, _ in middle], [q for _, q in middle]
    none = Comparison("none", math.nan, math.nan, 0, math.nan, math.nan, math.nan)
    tests = [
        compare(samples.get((r, c), {}), samples.get((r, baseline), {}), goal)
        if baseline is not None and c != baseline
        else none
        for r, c in cells
    ]
    table["test"] = [t.test if baseline is not None and c != baseline else ""
                     for t, (_, c) in zip(tests, cells, strict=True)]  # fmt: skip
    table["p_value"] = [t.p for t in tests]
    table["p_wilcoxon"] = [t.wilcoxon_p for t in tests]
    table["p_holm"] = holm(list(table["p_value"]))
    table["p_improvement"] = [t.improvement for t in tests]
    table["p_improvement_low"] = [t.improvement_low for t in tests]
    table["p_improvement_high"] = [t.improvement_high for t in tests]
    table["pairs"] = [t.pairs for t in tests]
    table["baseline"] = table["column"] == baseline
    columns = [*CELL, "mean", "std", "ci_low", "ci_high", "median", "iqm", "test", "pairs"]
    columns += ["p_value", "p_holm", "p_wilcoxon", "p_improvement", "p_improvement_low"]
    columns += ["p_improvement_high", "baseline"]
    return table[[*columns, "runs", "completed", "not_finished", "best"]]


def _by_replicate(cell: Any, replicates: list[str], values: list[float]) -> dict[Any, float]:
    """A cell's values by seed and fold, which pair them with the baseline's; where those
    do not tell its runs apart (records without them), by a key of the cell's own, so
    they pair with nothing and none is lost."""
    if len(set(replicates)) == len(replicates):
        return dict(zip(replicates, values, strict=True))
    return {(cell, i): v for i, v in enumerate(values)}


def shaped_markdown(grid: Grid, part: pd.DataFrame) -> str:
    """A frame with a ``text`` per (row, column) cell as the grid's markdown table, in the
    grid's row and column order; cells without runs read ``not run``."""
    shaped = part.pivot(index="row", columns="column", values="text")
    shaped = shaped.reindex(index=list(grid.cells), columns=grid.columns).astype(object)
    shaped = shaped.fillna("not run")
    shaped.index.name, shaped.columns.name = "run", None
    return shaped.to_markdown()


def markdown_metric_table(grid: Grid, key: str, baseline: str | None = None) -> str:
    """Rows model/dataset, columns activation; ``mean [95% CI] (runs, p, Holm p)``, the
    row's best in bold; then each comparison's details."""
    table = metric_table(grid, key, baseline)
    table["text"] = [_metric_cell(r) for r in table.to_dict("records")]
    if baseline is None:
        against = "no baseline column (no fixed activation; pick one with --baseline)"
    else:
        used = sorted({t for t in table["test"] if t and t != "none"})
        against = (
            f"p: {' or '.join(TEST_NAMES[t] for t in used) or 'no test (one run a side)'} "
            f"against the row's baseline, {baseline}; Holm: p adjusted by Holm's method over "
            f"the table's {int(table['p_value'].notna().sum())} comparisons"
        )
    text = (
        f"{key}: mean [95% confidence interval of the mean] over seeds/folds (completed "
        f"runs); {against}; best per row in bold ({grid.goal(key)} is better)\n\n"
        + shaped_markdown(grid, table)
        + "\n"
    )
    if baseline is not None and table["p_value"].notna().any():
        text += "\n" + _comparisons(table, grid.goal(key))
    return text


TEST_NAMES = {
    "paired t": "the paired t-test (runs paired by seed and fold: the same data and initial "
    "weights)",
    "Welch": "Welch's t-test (runs that do not pair up)",
}


def _comparisons(table: pd.DataFrame, goal: str) -> str:
    """Every column against its row's baseline: the test, the p-values, the probability
    of improvement and the robust centres."""
    tested = table[table["p_value"].notna()]
    better = "higher" if goal == "max" else "lower"

    def fmt(value: float, digits: str = ".2g") -> str:
        return "—" if pd.isna(value) else format(value, digits)

    pairs = zip(tested["test"], tested["pairs"], strict=True)
    shown = pd.DataFrame(
        {
            "row": tested["row"],
            "column": tested["column"],
            "test": [f"{t} ({n} pairs)" if n else t for t, n in pairs],
            "p": [fmt(v) for v in tested["p_value"]],
            "Holm p": [fmt(v) for v in tested["p_holm"]],
            "Wilcoxon p": [fmt(v) for v in tested["p_wilcoxon"]],
            "P(better) [95% CI]": [
                f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"
                for v, lo, hi in zip(tested["p_improvement"], tested["p_improvement_low"],
                                     tested["p_improvement_high"], strict=True)
            ],
            "median": [fmt(v, ".4g") for v in tested["median"]],
            "IQM": [fmt(v, ".4g") for v in tested["iqm"]],
        }
    )  # fmt: skip
    return (
        f"Each column against its row's baseline. P(better): the share of run pairs (by "
        f"seed where paired, else every pair) in which the column's value is {better} "
        f"(ties count half), with a 95% percentile-bootstrap interval; IQM: the mean of the "
        f"middle half of the runs.\n\n{shown.to_markdown(index=False)}\n"
    )


def runs(count: int) -> str:
    """A run count as words: "n" would read as the slope family's scale factor."""
    return f"{count} run{'' if count == 1 else 's'}"


def _metric_cell(rec: dict[str, Any]) -> str:
    if pd.isna(rec["mean"]):
        text = "—"
    else:
        spread = (
            f"[{rec['ci_low']:.4g}, {rec['ci_high']:.4g}]"
            if not pd.isna(rec["ci_low"])
            else "[one run: no interval]"
        )
        test = ", baseline" if rec["baseline"] else ""
        if not pd.isna(rec["p_value"]):
            test = f", p={rec['p_value']:.2g}, Holm {rec['p_holm']:.2g}"
        text = f"{rec['mean']:.4g} {spread} ({runs(rec['completed'])}{test})"
    if rec["best"]:
        text = f"**{text}**"
    return f"{text} [{rec['not_finished']}]" if rec["not_finished"] else text


def convergence_table(grid: Grid) -> pd.DataFrame:
    """Per cell, metric and target: how many completed runs reached it and the mean
    epochs, steps and seconds they took (a run that never reached it is counted, not
    averaged)."""
    hits = []
    for row, cells in grid.cells.items():
        for col, cell in cells.items():
            for run in cell.with_status("completed"):
                for metric, targets in run.metrics.get("convergence", {}).items():
                    for target, where in targets.items():
                        hit = {"row": row, "column": col, "metric": metric, "target": target}
                        hits.append({**hit, **(where or {}), "reached": where is not None})
    keys = [*CELL, "metric", "target"]
    if not hits:
        return pd.DataFrame(columns=[*keys, "reached", "completed", "not_finished", "step_median"])
    frame = pd.DataFrame(hits)
    for unit in ("epoch", "step", "seconds"):
        frame[unit] = frame.get(unit, pd.Series(dtype=float))
    grouped = frame.groupby(keys, sort=False)
    table = grouped.agg(
        reached=("reached", "sum"),
        completed=("reached", "size"),
        epoch_mean=("epoch", "mean"),
        step_mean=("step", "mean"),
        seconds_mean=("seconds", "mean"),
        step_median=("step", "median"),
        seconds_median=("seconds", "median"),
    ).reset_index()
    cells = _cells(grid)[[*CELL, "not_finished"]].reset_index(names="cell")
    table = table.merge(cells, on=CELL, how="left")
    # within a cell: by metric, the easiest target first (ascending accuracies, descending
    # losses)
    table["easiest"] = [
        _easiness(grid, m, t) for m, t in zip(table["metric"], table["target"], strict=True)
    ]
    table = table.sort_values(["cell", "metric", "easiest"], kind="stable")
    units = ["epoch_mean", "step_mean", "seconds_mean", "step_median", "seconds_median"]
    if not grid.timed_together():
        units = [u for u in units if not u.startswith("seconds")]
    return table[[*keys, "reached", "completed", "not_finished", *units]]


def _easiness(grid: Grid, metric: str, target: str) -> float:
    """Sorts the easiest target first: ascending accuracies, descending losses."""
    return float(target) if grid.goal(metric) == "max" else -float(target)


def markdown_convergence_tables(grid: Grid) -> str:
    """One table per metric and target; a cell reads ``epochs / steps`` (``/ seconds``
    where the runs were timed together)."""
    table = convergence_table(grid)
    units = "epochs / steps / seconds" if "seconds_mean" in table else "epochs / steps"
    out = []
    for (metric, target), part in table.groupby(["metric", "target"], sort=False):
        sign = "≥" if grid.goal(metric) == "max" else "≤"
        part = part.assign(text=[_convergence_cell(r) for r in part.to_dict("records")])
        out += [
            f"### {metric} {sign} {target}: mean {units} to reach it",
            "",
            shaped_markdown(grid, part),
            "",
        ]
    return "\n".join(out)


def _convergence_cell(rec: dict[str, Any]) -> str:
    if rec["reached"] == 0:
        text = f"not reached (0 of {rec['completed']})" if rec["completed"] else "—"
    else:
        text = f"{rec['epoch_mean']:.3g} / {rec['step_mean']:.0f}"
        if "seconds_mean" in rec:
            text += f" / {rec['seconds_mean']:.3g}s"
        if rec["reached"] < rec["completed"]:
            text += f" ({rec['reached']} of {rec['completed']})"
    return f"{text} [{rec['not_finished']}]" if rec["not_finished"] else text
