"""``adaptrun-report SWEEP_DIR``: a sweep's tables (markdown, CSV) and plots (PNG),
written into the sweep folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

FILES = {  # what the report writes into the sweep folder, for --help and the docs
    "report.md": "every table and plot on one page",
    "card.md": "a tuned sweep's verdict: per task and activation, the choice, test, cost, targets",
    "results.csv": "the metric per cell: mean, 95% interval, paired or Welch test, Holm, P(better)",
    "convergence.csv": "per convergence target: how many runs reached it, in how many steps",
    "speed.csv": "steps to each target relative to the baseline",
    "cost.csv": "parameters and FLOPs per step per cell (ms/step only for runs timed in one job)",
    "cost_measured.csv": "--cost: each cell's step timed side by side, ratio and range",
    "reference.csv": "the published values a preset carries beside ours",
    "train_loss.png": "training loss over steps, mean and band over seeds, a panel per row and n",
    "test_<metric>.png": "the task's test metric over steps, likewise",
    "*_seconds.png": "the same curves against seconds, only for runs timed in one job",
    "learned_activation.png": "each activation's learned function per layer at the end",
    "distribution.png": "the metric's distribution over seeds per cell",
}


def report(
    sweep_dir: Path, metric: str | None = None, baseline: str | None = None, cost: bool = False
) -> list[Path]:
    """Write report.md, the tables as CSV and the plots (FILES); returns the files
    written. ``baseline``: the column every other is tested against (default: the first
    with a fixed activation). ``cost``: time each cell's step side by side here."""
    # imported here: --help answers without loading pandas, scipy and matplotlib
    from adaptrun.report.compare import (
        cost_table,
        markdown_cost_table,
        markdown_reference_table,
        markdown_speed_tables,
        reference_table,
        speed_table,
    )
    from adaptrun.report.curves import Events
    from adaptrun.report.plots import plot_distribution
    from adaptrun.report.runs import build_grid, read_sweep
    from adaptrun.report.stats import baseline_column
    from adaptrun.report.tables import (
        convergence_table,
        markdown_convergence_tables,
        markdown_metric_table,
        metric_table,
        primary_metric,
    )

    swept = read_sweep(sweep_dir)
    runs = swept.runs
    for note in swept.notes:
        print(f"adaptrun-report: warning: {note}", file=sys.stderr)
    if not runs:
        raise FileNotFoundError(
            f"no runs under {sweep_dir} (a run folder holds .hydra/config.yaml); "
            "give the folder of a sweep (outputs/multirun/<date>) or of one run"
        )
    grid = build_grid(runs)
    key = metric or f"final_{primary_metric(grid)}"
    known = sorted(
        {k for r in runs for k, v in r.metrics.items() if isinstance(v, (int, float))}
        - {"steps", "epochs", "wall_seconds", "seconds_per_step"}
    )
    if metric and known and metric not in known:
        raise ValueError(f"no run has metric {metric!r}; valid: {', '.join(known)}")
    base = baseline_column(grid, baseline)
    out = Path(sweep_dir)
    tuned = _tuned_keys(out)
    cost = cost or tuned is not None  # a card times every cell side by side
    tables = {
        "results.csv": metric_table(grid, key, base),
        "convergence.csv": convergence_table(grid),
        "cost.csv": cost_table(grid, base),
        "reference.csv": reference_table(grid, key),
    }
    if base is not None:
        tables["speed.csv"] = speed_table(grid, base)
    measured = ""
    if cost:
        from adaptrun.report.cost import markdown_measured_cost, measure_cost

        steps = 10
        tables["cost_measured.csv"], notes = measure_cost(grid, base, steps=steps)
        measured = markdown_measured_cost(grid, tables["cost_measured.csv"], notes, steps)
    for name, table in tables.items():
        table.to_csv(out / name, index=False)
    published = {
        (r, c): v
        for r, c, v in tables["reference.csv"][["row", "column", "published"]].itertuples(
            index=False
        )
    }
    figures = _figures(grid, Events(), primary_metric(grid), out)
    plot_distribution(grid, key, out / "distribution.png", published)
    sections = [
        f"# Report: {sweep_dir}\n\n{len(runs)} runs. Rows: {', '.join(grid.row_keys)}; "
        f"columns: {', '.join(grid.column_keys)}; baseline: {base or 'none'}."
        + "".join(f"\n\n- {note}" for note in swept.notes),
        "## Results\n\n" + markdown_metric_table(grid, key, base),
        "![distribution over seeds](distribution.png)",
    ]
    if published:
        sections.append("## Published values beside ours\n\n" + markdown_reference_table(grid, key))
    if base is not None:
        sections.append("## Time to each target, relative to the baseline\n\n"
                        + markdown_speed_tables(grid, base))  # fmt: skip
    sections += [
        "## Convergence speed (means)\n\n" + markdown_convergence_tables(grid),
        "## Cost\n\n" + markdown_cost_table(grid, base),
        *(["## Cost, measured side by side (--cost)\n\n" + measured] if measured else []),
        "## Curves\n\n" + "\n\n".join(f"![{what}]({p.name})" for what, p in figures.items()),
    ]
    if not grid.timed_together():
        sections[-1] += (
            "\n\nNo curves against seconds: these runs were timed in separate jobs, whose "
            "seconds do not compare; stacked runs (trainer.stack, hydra/sweeper=stacked) "
            "are timed together."
        )
    (out / "report.md").write_text("\n\n".join(sections) + "\n")
    plots = [*figures.values(), out / "distribution.png"]
    written = [out / "report.md", *(out / name for name in tables), *plots]
    if tuned is not None:
        from adaptrun.report.card import render

        card = render(grid, base, tuned, tables.get("cost_measured.csv"))
        figures_md = "\n\n".join(f"![{what}]({p.name})" for what, p in figures.items())
        (out / "card.md").write_text(card + "\n## Figures\n\n" + figures_md + "\n")
        written.insert(0, out / "card.md")
    return written


def _tuned_keys(sweep_dir: Path) -> list[str] | None:
    """The keys a tuned sweep searched (its tuning.json), or None for another sweep."""
    import json

    try:
        record = json.loads((sweep_dir / "tuning.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{sweep_dir / 'tuning.json'} is damaged ({exc})") from exc
    return [str(k) for k in record.get("tuned", [])] if isinstance(record, dict) else None


def _figures(grid: Any, events: Any, primary: str, out: Path) -> dict[str, Path]:
    """The curves (training loss; the task's test metric; against seconds only where the
    runs were timed in one job) and the learned activations: description -> file."""
    from adaptrun.records.board import tag
    from adaptrun.report.plots import plot_curves, plot_learned

    curves = [("train_loss", "training loss")]
    if primary != "train_loss":
        curves.append((primary, primary.replace("_", " ")))
    axes = ["step", "seconds"] if grid.timed_together() else ["step"]
    drawn: dict[str, Path] = {}
    for x in axes:
        for metric, what in curves:
            name = f"{metric}{'_seconds' if x == 'seconds' else ''}.png"
            path = plot_curves(grid, events, tag(metric), out / name, what, x)
            if path is not None:
                drawn[f"{what} against {x}s"] = path
    learned = plot_learned(grid, out / "learned_activation.png")
    if learned is not None:
        drawn["learned activations"] = learned
    return drawn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="adaptrun-report",
        description="Write a sweep's tables and plots into its folder: "
        + "; ".join(f"{name} ({what})" for name, what in FILES.items())
        + ".",
    )
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (or any folder of runs)")
    parser.add_argument(
        "--metric",
        help="metrics.json key for the results table (default: final_test_acc, or "
        "final_test_rel_l2 for regression); e.g. best_test_acc",
    )
    parser.add_argument(
        "--baseline",
        help="the column the others are tested against (default: the first column with a "
        "fixed activation, i.e. no trainable activation parameters)",
    )
    parser.add_argument(
        "--cost",
        action="store_true",
        help="also time each cell's training step side by side in this process (its data "
        "must be here): the recorded seconds of separate jobs do not compare",
    )
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.exit(2, f"adaptrun-report: error: {args.sweep_dir} is not a folder\n")
    try:
        written = report(args.sweep_dir, args.metric, args.baseline, args.cost)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"adaptrun-report: error: {' '.join(str(exc).split())}\n")
    except OSError as exc:  # a folder it cannot write in, a full disk
        parser.exit(1, f"adaptrun-report: error: {' '.join(str(exc).split())}\n")
    for path in written:
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
