"""The report's statistics against scipy on fixed numbers, and its comparison tables:
intervals, Welch's tests against the baseline, time to target relative to it, cost, the
published values beside ours, and missing or failed runs named in their cells."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from adaptrun.report.compare import (
    cost_table,
    markdown_reference_table,
    reference_table,
    speed_table,
)
from adaptrun.report.runs import Cell, Grid, Run
from adaptrun.report.stats import baseline_column, interval, welch_p
from adaptrun.report.tables import markdown_metric_table, metric_table


def test_interval_is_students_t_of_the_mean():
    assert interval([1, 2, 3, 4, 5]) == pytest.approx((1.0367568385, 4.9632431615))
    values = [0.91, 0.93, 0.9, 0.95]
    expected = stats.t.interval(0.95, 3, loc=sum(values) / 4, scale=stats.sem(values))
    assert interval(values) == pytest.approx(expected)
    assert all(math.isnan(v) for v in interval([0.5]))  # one run: no interval
    assert interval([0.5, 0.5, 0.5]) == (0.5, 0.5)  # no spread: the value itself


def test_welch_p_is_scipys_unequal_variance_test():
    assert welch_p([1, 2, 3, 4, 5], [2, 4, 6, 8, 10]) == pytest.approx(0.1075311949)
    assert welch_p([0.9, 0.91, 0.92], [0.8, 0.82, 0.81]) == pytest.approx(0.00025521675)
    assert math.isnan(welch_p([1.0], [2.0, 3.0]))


def _run(tmp_path, acc: float, params: int, seconds: float, steps: int | None, status="completed"):
    metrics = {
        "status": status,
        "final_test_acc": acc,
        "goals": {"test_acc": "max"},
        "params": {"activation": params},
        "seconds_per_step": seconds,
        "timed_in": "/sweep/stack-0x8",  # one stacked job: their seconds compare
        "convergence": {"test_acc": {"0.9": {"step": steps, "epoch": 1, "seconds": steps / 100}}}
        if steps
        else {"test_acc": {"0.9": None}},
    }
    config = {
        "model.name": "vgg1",
        "reference.metric": "final_test_acc",
        "reference.rows": "model.name",
        "reference.columns": "activation.name",
        "reference.source": "the paper, table 3",
        "reference.values.vgg1.relu": 0.6656,
        "reference.values.vgg1.adact": 0.678,
    }
    return Run(tmp_path, config, metrics if status != "missing" else {})


@pytest.fixture
def grid(tmp_path):
    relu = [(0.66, 0, 0.010, 400), (0.67, 0, 0.011, 500), (0.65, 0, 0.012, 600)]
    adact = [(0.70, 50, 0.020, 200), (0.69, 50, 0.021, 250), (0.71, 50, 0.019, None)]
    cells = {
        "relu": Cell([_run(tmp_path, *r) for r in relu]),
        "adact": Cell(
            [_run(tmp_path, *r) for r in adact]
            + [
                _run(tmp_path, 0.1, 50, 0.02, None, "failed"),
                _run(tmp_path, 0, 0, 0, None, "missing"),
            ]
        ),
    }
    for name, cell in cells.items():
        for run in cell.runs:
            run.config["activation.name"] = name
    return Grid(["model.name"], ["activation.name"], {"vgg1/cifar10": cells})


def test_results_give_intervals_and_tests_against_the_fixed_baseline(grid):
    base = baseline_column(grid)
    assert base == "relu"  # the column without trainable activation parameters
    table = metric_table(grid, "final_test_acc", base).set_index("column")
    relu, adact = [0.66, 0.67, 0.65], [0.70, 0.69, 0.71]
    assert (table.loc["adact", "ci_low"], table.loc["adact", "ci_high"]) == pytest.approx(
        stats.t.interval(0.95, 2, loc=0.70, scale=stats.sem(adact))
    )
    assert table.loc["adact", "p_value"] == pytest.approx(
        stats.ttest_ind(adact, relu, equal_var=False).pvalue
    )
    assert math.isnan(table.loc["relu", "p_value"]) and table.loc["relu", "baseline"]
    text = markdown_metric_table(grid, "final_test_acc", base)
    low, high = table.loc["adact", "ci_low"], table.loc["adact", "ci_high"]
    p = table.loc["adact", "p_value"]
    assert table.loc["adact", "test"] == "Welch"  # these records hold no seeds to pair by
    cell = (
        f"**0.7 [{low:.4g}, {high:.4g}] (3 runs, p={p:.2g}, Holm {p:.2g})** [1 failed, 1 missing]"
    )
    assert cell in text  # one comparison: Holm's adjustment is the p-value itself
    assert "0.66 [" in text and "(3 runs, baseline)" in text
    with pytest.raises(ValueError, match="'gelu' is not a column; columns: relu, adact"):
        baseline_column(grid, "gelu")
    assert baseline_column(grid, "adact") == "adact"


def test_time_to_target_is_the_median_relative_to_the_baseline(grid):
    table = speed_table(grid, "relu").set_index("column")
    assert table.loc["relu", "step_median"] == 500
    assert table.loc["adact", "step_median"] == 225  # of the two runs that reached it
    assert table.loc["adact", "steps_vs_baseline"] == pytest.approx(225 / 500)
    assert table.loc["adact", "seconds_vs_baseline"] == pytest.approx(2.25 / 5)
    assert (table.loc["adact", "reached"], table.loc["adact", "completed"]) == (2, 3)


def test_cost_is_parameters_flops_and_time_per_step(grid):
    for column, flops in (("relu", 2e9), ("adact", 3e9)):
        for run in grid.cells["vgg1/cifar10"][column].with_status("completed"):
            run.metrics["flops_per_step"] = flops
            run.metrics["params"]["total"] = 1000 + run.metrics["params"]["activation"]
    table = cost_table(grid, "relu").set_index("column")
    assert table.loc["adact", "activation_params"] == 50
    assert table.loc["adact", "total_params"] == 1050
    assert table.loc["adact", "flops_vs_baseline"] == pytest.approx(1.5)
    from adaptrun.report.compare import markdown_cost_table

    assert "50 / 1050 params, 3 GFLOPs (1.50x)" in markdown_cost_table(grid, "relu")
    assert table.loc["adact", "seconds_per_step"] == pytest.approx(0.020)
    assert table.loc["adact", "time_vs_baseline"] == pytest.approx(0.020 / 0.011)


def test_seconds_of_separately_timed_runs_are_left_out_with_a_note(grid):
    """Runs of separate jobs ran one after another under changing load: the report shows
    their steps, not their seconds (nor ratios of them), and says why."""
    from adaptrun.report.compare import markdown_cost_table, markdown_speed_tables
    from adaptrun.report.runs import SEPARATELY_TIMED
    from adaptrun.report.tables import convergence_table, markdown_convergence_tables

    for k, run in enumerate(r for cell in grid.cells["vgg1/cifar10"].values() for r in cell.runs):
        run.metrics["timed_in"] = f"/sweep/{k}"
    assert not grid.timed_together()
    speed = speed_table(grid, "relu").set_index("column")
    assert speed.loc["adact", "steps_vs_baseline"] == pytest.approx(225 / 500)
    assert not [c for c in speed.columns if "seconds" in c]
    assert not [c for c in convergence_table(grid).columns if "seconds" in c]
    assert not [c for c in cost_table(grid, "relu").columns if "seconds" in c or "time" in c]
    speed_text, cost_text = markdown_speed_tables(grid, "relu"), markdown_cost_table(grid, "relu")
    assert "0.45x steps (2 of 3)" in speed_text and "seconds (2" not in speed_text
    assert SEPARATELY_TIMED in speed_text and SEPARATELY_TIMED in cost_text
    assert "50 / " in cost_text and "ms/step" not in cost_text
    assert "mean epochs / steps to reach it" in markdown_convergence_tables(grid)
    assert "s |" not in markdown_convergence_tables(grid)


def test_published_values_stand_beside_ours(grid):
    table = reference_table(grid, "final_test_acc").set_index("column")
    assert table.loc["adact", "published"] == 0.678
    assert table.loc["relu", "published"] == 0.6656
    assert table.loc["adact", "mean"] == pytest.approx(0.70)
    text = markdown_reference_table(grid, "final_test_acc")
    assert "published in: the paper, table 3" in text
    lines = {line.split("|")[2].strip(): line for line in text.splitlines() if "vgg1/" in line}
    adact = [part.strip() for part in lines["adact"].split("|")[1:-1]]
    assert adact[2:] == ["0.678", f"0.7 [{table.loc['adact', 'ci_low']:.4g}, "
                         f"{table.loc['adact', 'ci_high']:.4g}] (3 runs)", "yes"]  # fmt: skip
    relu = [part.strip() for part in lines["relu"].split("|")[1:-1]]
    assert relu[2] == "0.6656" and relu[4] == "yes"  # 0.6656 inside [0.6352, 0.6848]
    assert reference_table(grid, "final_test_loss").empty  # no value published for it


def test_runs_are_labelled_by_the_values_that_ran(tmp_path):
    """A preset's interpolated value (activation.n: ${slope_defaults.n}) and an overridden
    one group and label alike: by the number."""
    from omegaconf import OmegaConf

    from adaptrun.report.runs import build_grid, load_runs

    for name, n in (("preset", "${slope_defaults.n}"), ("override", 1)):
        folder = tmp_path / name / ".hydra"
        folder.mkdir(parents=True)
        config = {"slope_defaults": {"n": 10}, "activation": {"name": "global", "n": n}}
        config |= {"model": {"name": "mlp"}, "dataset": {"name": "burgers"}, "when": "${now:%H}"}
        OmegaConf.save(OmegaConf.create(config), folder / "config.yaml")
    runs = load_runs(tmp_path)
    assert sorted(r.config["activation.n"] for r in runs) == [1, 10]
    assert sorted(build_grid(runs).columns) == ["global (n=1)", "global (n=10)"]


def test_the_report_runs_as_a_module_and_describes_itself(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "adaptrun.report", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: adaptrun-report")


def test_holm_adjusts_as_worked_by_hand():
    from adaptrun.report.stats import holm

    # sorted: 0.005, 0.01, 0.03, 0.04 of m = 4 -> 4*0.005, 3*0.01, 2*0.03, max(1*0.04, 0.06)
    adjusted = holm([0.01, 0.04, 0.03, math.nan, 0.005])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and adjusted[4] == pytest.approx(0.02)
    assert math.isnan(adjusted[3])  # not a comparison: not counted in the family
    assert holm([0.5, 0.9]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []


def test_paired_runs_get_the_paired_tests_and_a_bootstrap_probability_of_improvement():
    import numpy as np

    from adaptrun.report.stats import compare

    new = {0: 0.91, 1: 0.93, 2: 0.90, 3: 0.95, 4: 0.92}
    old = {0: 0.90, 1: 0.90, 2: 0.91, 3: 0.92, 4: 0.89}
    result = compare(new, old, goal="max")
    a, b = np.array(list(new.values())), np.array(list(old.values()))
    assert result.test == "paired t" and result.pairs == 5
    assert result.p == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert result.wilcoxon_p == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert result.improvement == pytest.approx(0.8)  # 4 of 5 seeds better
    rng = np.random.default_rng(0)
    won = stats.bootstrap((a - b,), lambda d: np.mean(d > 0), n_resamples=2000,
                          vectorized=False, method="percentile", rng=rng)  # fmt: skip
    ci = won.confidence_interval
    assert (result.improvement_low, result.improvement_high) == pytest.approx((ci.low, ci.high))
    lower = compare(new, old, goal="min")  # a loss: lower is better
    assert lower.improvement == pytest.approx(0.2) and lower.p == pytest.approx(result.p)


def test_runs_that_do_not_pair_up_get_welch_and_the_share_of_every_pair():
    from adaptrun.report.stats import compare

    new, old = {0: 1.0, 1: 3.0}, {0: 2.0, 5: 0.0}
    result = compare(new, old, goal="max")
    assert result.test == "Welch" and result.pairs == 0 and math.isnan(result.wilcoxon_p)
    assert result.p == pytest.approx(stats.ttest_ind([1, 3], [2, 0], equal_var=False).pvalue)
    assert result.improvement == pytest.approx(3 / 4)  # 1>0, 3>2, 3>0; 1<2
    assert compare({0: 1.0}, {0: 2.0}).test == "none"  # one run a side: nothing to test


def test_robust_centres_are_the_median_and_the_interquartile_mean():
    from adaptrun.report.stats import centres

    values = [0.9, 0.91, 0.92, 0.93, 0.1]  # one diverged seed
    median, iqm = centres(values)
    assert median == pytest.approx(0.91)
    assert iqm == pytest.approx(stats.trim_mean(values, 0.25)) and iqm == pytest.approx(0.91)


def test_the_results_table_pairs_runs_by_seed_and_corrects_over_its_comparisons(tmp_path):
    values = {"relu": [0.60, 0.62, 0.61], "global": [0.63, 0.66, 0.62], "adact": [0.58, 0.6, 0.6]}
    cells = {}
    for column, accs in values.items():
        runs = []
        for seed, acc in enumerate(accs):
            run = _run(tmp_path, acc, 0 if column == "relu" else 4, 0.01, None)
            run.config["seed"] = seed
            runs.append(run)
        cells[column] = Cell(runs)
    grid = Grid(["model.name"], ["activation.name"], {"vgg1": cells})
    table = metric_table(grid, "final_test_acc", "relu").set_index("column")
    for column in ("global", "adact"):
        assert table.loc[column, "test"] == "paired t" and table.loc[column, "pairs"] == 3
        paired = stats.ttest_rel(values[column], values["relu"]).pvalue
        assert table.loc[column, "p_value"] == pytest.approx(paired)
    low, high = sorted(["global", "adact"], key=lambda c: table.loc[c, "p_value"])
    assert table.loc[low, "p_holm"] == pytest.approx(2 * table.loc[low, "p_value"])
    assert table.loc[high, "p_holm"] == pytest.approx(
        max(2 * table.loc[low, "p_value"], table.loc[high, "p_value"])
    )
    text = markdown_metric_table(grid, "final_test_acc", "relu")
    assert "p: the paired t-test (runs paired by seed and fold" in text
    assert "over the table's 2 comparisons" in text
    [line] = [row for row in text.splitlines() if row.startswith("| vgg1 ") and "global" in row
              and "pairs" in row]  # fmt: skip
    assert "paired t (3 pairs)" in line and "1 [1, 1]" in line  # every seed better
