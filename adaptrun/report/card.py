"""card.md: what a tuned comparison found, on one page. Per task (a row of the grid) and
activation (a column): the value its search chose, its task's primary test metric over
the evaluation seeds, the paired test against the baseline with Holm's correction over
every comparison on the card, the probability of improvement, its cost (parameters,
FLOPs, time per step measured side by side) and the steps to each target; then one
line per activation that counts the tasks it wins and loses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from adaptrun.report.compare import cost_table
from adaptrun.report.runs import Grid
from adaptrun.report.stats import holm
from adaptrun.report.tables import convergence_table, metric_table, primary_metric

ALPHA = 0.05  # the card's verdicts: Holm-adjusted p below this


def _fmt(value: Any, digits: str = ".4g") -> str:
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "—" if missing else format(value, digits)


def row_tables(grid: Grid, baseline: str | None) -> list[tuple[str, str, pd.DataFrame]]:
    """(row, its metric, its metric table) per row: each row compared by its own task's
    primary metric (a card over presets mixes accuracies and errors), with Holm's
    adjustment redone over every comparison of every row."""
    tables = []
    for row, cells in grid.cells.items():
        sub = Grid(grid.row_keys, grid.column_keys, {row: cells})
        metric = primary_metric(sub)
        tables.append((row, metric, metric_table(sub, f"final_{metric}", baseline)))
    raw = [p for _, _, t in tables for p in t["p_value"]]
    adjusted = iter(holm(raw))
    for _, _, table in tables:
        table["p_holm"] = [next(adjusted) for _ in range(len(table))]
    return tables


def chosen(grid: Grid, row: str, column: str, keys: Sequence[str]) -> str:
    """The tuned keys' values the cell's runs trained with (as their configs say)."""
    runs = grid.cells[row].get(column)
    if runs is None or not runs.runs:
        return "—"
    values = []
    for key in keys:
        seen = sorted({str(r.config.get(key)) for r in runs.runs})
        values.append(f"{key.rsplit('.', 1)[-1]}={'/'.join(seen)}")
    return ", ".join(values) or "—"


def verdict(
    grid: Grid, tables: Sequence[tuple[str, str, pd.DataFrame]], baseline: str
) -> list[str]:
    """Per activation: on how many of the tasks it was compared on it is better, or
    worse, than the baseline with a Holm-adjusted p below ALPHA."""
    lines = []
    for column in grid.columns:
        if column == baseline:
            continue
        better = worse = total = 0
        for _, metric, table in tables:
            mine = table[table["column"] == column]
            base = table[table["column"] == baseline]
            if mine.empty or base.empty or pd.isna(mine["p_holm"].iloc[0]):
                continue
            total += 1
            goal_max = grid.goal(metric) == "max"
            delta = float(mine["mean"].iloc[0]) - float(base["mean"].iloc[0])
            if float(mine["p_holm"].iloc[0]) < ALPHA:
                if (delta > 0) == goal_max:
                    better += 1
                else:
                    worse += 1
        lines.append(
            f"- **{column}**: better than {baseline} on {better} of {total} tasks "
            f"(Holm-adjusted p < {ALPHA}), worse on {worse}"
        )
    return lines


def _steps(conv: pd.DataFrame, row: str, column: str, metric: str) -> str:
    """Runs that reached each target of the primary metric, and their median steps."""
    mine = conv[(conv["row"] == row) & (conv["column"] == column) & (conv["metric"] == metric)]
    parts = []
    for rec in mine.to_dict("records"):
        steps = "" if pd.isna(rec["step_median"]) else f", {rec['step_median']:.0f} steps"
        parts.append(f"≤{rec['target']}: {int(rec['reached'])}/{int(rec['completed'])}{steps}")
    return "; ".join(parts) or "—"


def render(
    grid: Grid,
    baseline: str | None,
    tuned: Sequence[str],
    measured: pd.DataFrame | None,
    search: str = "tuning.md",
) -> str:
    """The card's markdown."""
    tables = row_tables(grid, baseline)
    cost = cost_table(grid, baseline)
    conv = convergence_table(grid)
    timing = (
        "ms/step: each cell's step timed in this process, the cells taking turns "
        "(`adaptrun-report --cost`), median ratio to the baseline"
        if measured is not None
        else "ms/step: not measured (the runs' own seconds come from separate jobs and do not "
        "compare); `adaptrun-report --cost` times them side by side"
    )
    lines = [
        "# Card",
        "",
        f"Every activation had the same search of {', '.join(tuned) or 'nothing'} on tuning "
        f"seeds with a validation split (the search: {search}); the values below are its "
        f"evaluation seeds' at the chosen value, tested against {baseline or 'no baseline'} "
        "by the paired t-test where runs pair up by seed (else Welch), p adjusted by Holm's "
        f"method over the card's {sum(int(t['p_value'].notna().sum()) for _, _, t in tables)} "
        "comparisons. "
        f"P(better): the share of seed pairs the activation wins, 95% bootstrap interval. "
        f"{timing}.",
    ]
    for row, metric, table in tables:
        goal = "higher" if grid.goal(metric) == "max" else "lower"
        lines += [
            "",
            f"## {row}: final {metric} ({goal} is better)",
            "",
            "| activation | chosen | mean [95% CI] | p (Holm) | P(better) [95% CI] | params "
            "(activation / total) | MFLOPs/step (x) | ms/step (x) | steps to targets |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for rec in table.to_dict("records"):
            column = rec["column"]
            c = cost[(cost["row"] == row) & (cost["column"] == column)].to_dict("records")[0]
            unfinished = f", {rec['not_finished']}" if rec["not_finished"] else ""
            runs = f"{rec['completed']} runs{unfinished}"
            mean = f"{_fmt(rec['mean'])} [{_fmt(rec['ci_low'])}, {_fmt(rec['ci_high'])}] ({runs})"
            p, adjusted = _fmt(rec["p_value"], ".2g"), _fmt(rec["p_holm"], ".2g")
            test = "baseline" if rec["baseline"] else f"{p} ({adjusted})"
            better = "" if rec["baseline"] else (
                f"{_fmt(rec['p_improvement'], '.2f')} [{_fmt(rec['p_improvement_low'], '.2f')}, "
                f"{_fmt(rec['p_improvement_high'], '.2f')}]"
            )  # fmt: skip
            params = f"{_fmt(c['activation_params'], '.0f')} / {_fmt(c['total_params'], '.0f')}"
            flops = (
                f"{_fmt(c['flops_per_step'] / 1e6, '.3g')} ({_fmt(c['flops_vs_baseline'], '.2f')})"
            )
            lines.append(
                f"| {column} | {chosen(grid, row, column, tuned)} | {mean} | {test} | {better} "
                f"| {params} | {flops} | {_time(measured, row, column)} "
                f"| {_steps(conv, row, metric=metric, column=column)} |"
            )
    if baseline is not None:
        lines += ["", "## Verdict", "", *verdict(grid, tables, baseline)]
    return "\n".join(lines) + "\n"


def _time(measured: pd.DataFrame | None, row: str, column: str) -> str:
    if measured is None:
        return "—"
    mine = measured[(measured["row"] == row) & (measured["column"] == column)]
    if mine.empty:
        return "not measured"
    rec = mine.to_dict("records")[0]
    return f"{_fmt(rec['ms_per_step'], '.3g')} ({_fmt(rec['vs_baseline'], '.2f')})"
