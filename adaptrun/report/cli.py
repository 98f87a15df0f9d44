"""``adaptrun-report SWEEP_DIR``: a sweep's tables (markdown, CSV) and loss plots (PNG),
written into the sweep folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adaptrun.report.plots import plot_losses
from adaptrun.report.runs import build_grid, load_runs
from adaptrun.report.tables import (
    convergence_table,
    markdown_convergence_tables,
    markdown_metric_table,
    metric_table,
    primary_metric,
)


def report(sweep_dir: Path, metric: str | None = None) -> list[Path]:
    """Write report.md, results.csv, convergence.csv and train_loss.png; returns them."""
    runs = load_runs(sweep_dir)
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
    out = Path(sweep_dir)
    written = [
        out / "report.md",
        out / "results.csv",
        out / "convergence.csv",
        out / "train_loss.png",
    ]
    metric_table(grid, key).to_csv(written[1], index=False)
    convergence_table(grid).to_csv(written[2], index=False)
    plot_losses(grid, written[3])
    written[0].write_text(
        f"# Report: {sweep_dir}\n\n{len(runs)} runs. Rows: {', '.join(grid.row_keys)}; "
        f"columns: {', '.join(grid.column_keys)}.\n\n## Results\n\n"
        + markdown_metric_table(grid, key)
        + "\n## Convergence speed\n\n"
        + markdown_convergence_tables(grid)
        + "\n## Training loss\n\n![training loss](train_loss.png)\n"
    )
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="adaptrun-report",
        description="Write a sweep's tables (report.md, results.csv, convergence.csv) and "
        "training-loss plot (train_loss.png) into its folder.",
    )
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (or any folder of runs)")
    parser.add_argument(
        "--metric",
        help="metrics.json key for the results table (default: final_test_acc, or "
        "final_test_rel_l2 for regression); e.g. best_test_acc",
    )
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.exit(2, f"adaptrun-report: error: {args.sweep_dir} is not a folder\n")
    try:
        written = report(args.sweep_dir, args.metric)
    except (FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"adaptrun-report: error: {exc}\n")
    for path in written:
        print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
