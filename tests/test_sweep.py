"""Sweeps: impossible combinations refused up front, failures isolated and summarised,
finished runs skipped on a rerun, interrupted ones resumed, with every launcher."""

from __future__ import annotations

import csv
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.stats
from conftest import comparable as without_timing
from conftest import compose_config, read_metrics, run_cli, start_cli, wait_for
from hydra import compose, initialize_config_dir

from adaptrun.config.options import config_dir
from adaptrun.records.checkpoint import FILENAME
from adaptrun.report.cli import main as report_main
from adaptrun.report.curves import band
from adaptrun.report.plots import panels
from adaptrun.report.runs import build_grid, load_runs
from adaptrun.runner.run import run

EPOCHS = "trainer.epochs=2"


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """digits and mnist, two activations, two seeds, two worker processes (the joblib
    preset); mnist has no files and no download, so its four runs fail."""
    cwd = tmp_path_factory.mktemp("sweep")
    empty = cwd / "no-data"
    empty.mkdir()
    args = [
        "-m",
        "hydra/launcher=parallel",
        "hydra.launcher.n_jobs=2",
        "dataset=digits,mnist",
        "activation=relu,global",
        "seed=0,1",
        EPOCHS,
        f"data_root={empty}",
        "dataset.download=false",
        f"hydra.sweep.dir={cwd / 'sw'}",
    ]
    return cwd / "sw", run_cli(args, cwd), args


@pytest.mark.slow
def test_a_failing_run_is_recorded_and_the_sweep_goes_on(failing_sweep):
    sweep, result, _ = failing_sweep
    assert result.returncode == 1, result.stderr  # some run failed
    assert "Joblib.Parallel(n_jobs=2," in result.stdout  # the runs ran in worker processes
    digits = sorted(sweep.glob("*dataset=digits,*"))
    mnist = sorted(sweep.glob("*dataset=mnist,*"))
    assert len(digits) == len(mnist) == 4
    cores = len(os.sched_getaffinity(0))
    for folder in digits:
        metrics = read_metrics(folder)
        assert metrics["status"] == "completed"
        assert metrics["threads"] == max(1, cores // 2)  # trainer.threads=auto: 2 jobs share
    for folder in mnist:
        metrics = read_metrics(folder)
        assert metrics["status"] == "failed"
        assert "mnist" in metrics["error"] and "no-data" in metrics["error"]
        assert "Traceback" in (folder / "adaptrun.log").read_text()  # the full traceback
    # the summary: printed and saved, each failed run with its folder and reason
    assert "sweep of 8 runs: 4 completed, 4 failed" in result.stderr
    for folder in mnist:
        assert f"failed: {folder.name}: dataset mnist" in result.stderr
    summary = (sweep / "summary.md").read_text()
    assert "| 4 | 0 | 4 | 0 | 0 | 0 | 0 | 8 |" in summary  # completed..missing, total
    assert len(re.findall(r"^\| \d+ \| failed \|", summary, re.MULTILINE)) == 4


@pytest.mark.slow
def test_rerunning_a_sweep_skips_finished_runs(failing_sweep, tmp_path):
    sweep, _, args = failing_sweep
    digits = sorted(sweep.glob("*dataset=digits,*"))
    before = {f: (f / "metrics.json").read_text() for f in digits}
    events = {f: sorted(p.name for p in f.glob("events.*")) for f in digits}
    basic = [a for a in args if not a.startswith(("hydra/launcher", "hydra.launcher"))]
    result = run_cli(basic, tmp_path)  # any launcher: the folders are named by overrides
    assert result.returncode == 1
    for folder in digits:
        assert f"{folder} already completed: skipped" in result.stdout
        assert (folder / "metrics.json").read_text() == before[folder]
        assert sorted(p.name for p in folder.glob("events.*")) == events[folder]
    assert "sweep of 8 runs: 4 failed, 4 skipped" in result.stderr


@pytest.mark.slow
def test_report_cost_times_each_cell_side_by_side_and_names_what_it_cannot(failing_sweep, tmp_path):
    """The sweep's jobs were timed one after another: the report leaves their seconds out;
    --cost builds each cell's config and times its step here, cells taking turns."""
    import shutil

    from adaptrun.report.runs import SEPARATELY_TIMED

    sweep = tmp_path / "sweep"
    shutil.copytree(failing_sweep[0], sweep)
    result = subprocess.run(
        [sys.executable, "-m", "adaptrun.report", str(sweep), "--cost"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = {
        (r["row"], r["column"]): r
        for r in csv.DictReader((sweep / "cost_measured.csv").read_text().splitlines())
    }
    assert set(rows) == {("mlp/digits", "relu"), ("mlp/digits", "global")}  # mnist: no data
    base, other = rows[("mlp/digits", "relu")], rows[("mlp/digits", "global")]
    assert float(base["vs_baseline"]) == float(base["vs_baseline_high"]) == 1.0
    low, mid, high = (
        float(other[k]) for k in ("vs_baseline_low", "vs_baseline", "vs_baseline_high")
    )
    assert 0 < low <= mid <= high and float(other["ms_per_step"]) > 0 and other["rounds"] == "5"
    report = (sweep / "report.md").read_text()
    measured = report.split("## Cost, measured side by side (--cost)")[1]
    assert (
        f"{float(other['ms_per_step']):.3g} ms/step, {mid:.2f}x [{low:.2f}, {high:.2f}]" in measured
    )
    assert "- mlp/mnist / relu: not measured (" in measured
    speed = report.split("## Time to each target")[1].split("## Convergence")[0]
    assert SEPARATELY_TIMED in speed and "x seconds" not in speed


@pytest.mark.slow
def test_report_renders_the_papers_tables_and_plots_from_the_sweep(failing_sweep):
    sweep, _, _ = failing_sweep
    result = subprocess.run(
        [sys.executable, "-m", "adaptrun.report", str(sweep)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    rows = {
        (r["row"], r["column"]): r
        for r in csv.DictReader((sweep / "results.csv").read_text().splitlines())
    }
    assert set(rows) == {(d, a) for d in ("mlp/digits", "mlp/mnist") for a in ("relu", "global")}
    means = {}
    for act in ("relu", "global"):
        accs = [read_metrics(f)["final_test_acc"] for f in sweep.glob(f"activation={act},*digits*")]
        rec = rows[("mlp/digits", act)]
        assert float(rec["mean"]) == pytest.approx(statistics.fmean(accs))
        assert float(rec["std"]) == pytest.approx(statistics.stdev(accs))
        assert rec["completed"] == "2" and rec["not_finished"] == ""
        means[act] = statistics.fmean(accs)
        failed = rows[("mlp/mnist", act)]
        assert failed["mean"] == "" and failed["not_finished"] == "2 failed"
    accs = {  # by seed: seed k drew the same data and initial weights for both columns
        act: [
            read_metrics(next(sweep.glob(f"activation={act},*digits*,seed={seed}*")))[
                "final_test_acc"
            ]
            for seed in (0, 1)
        ]
        for act in ("relu", "global")
    }
    ci = scipy.stats.t.interval(0.95, 1, loc=means["global"], scale=scipy.stats.sem(accs["global"]))
    rec = rows[("mlp/digits", "global")]
    if accs["global"][0] != accs["global"][1]:
        assert (float(rec["ci_low"]), float(rec["ci_high"])) == pytest.approx(ci)
    assert rec["test"] == "paired t" and rec["pairs"] == "2"  # the seeds pair the runs
    diff = [g - r for g, r in zip(accs["global"], accs["relu"], strict=True)]
    if diff[0] != diff[1]:
        paired = scipy.stats.ttest_rel(accs["global"], accs["relu"]).pvalue
        assert float(rec["p_value"]) == pytest.approx(paired)
        assert float(rec["p_holm"]) == pytest.approx(paired)  # the table's one comparison
    assert rows[("mlp/digits", "relu")]["baseline"] == "True"  # fixed: no activation params
    best = max(means, key=means.get)
    assert rows[("mlp/digits", best)]["best"] == "True"
    assert rows[("mlp/digits", min(means, key=means.get))]["best"] == "False"

    report = (sweep / "report.md").read_text()
    table = report.split("## Results")[1].split("##")[0]
    assert re.search(r"\| run +\| relu +\| global +\|", table)
    assert f"**{means[best]:.4g} [" in table
    assert "(2 runs, baseline)" in table
    assert table.count("— [2 failed]") == 2  # failed runs are shown, never dropped

    conv = [
        r
        for r in csv.DictReader((sweep / "convergence.csv").read_text().splitlines())
        if r["row"] == "mlp/digits"
    ]
    for rec in conv:
        runs = sweep.glob(f"activation={rec['column']},*digits*")
        hits = [read_metrics(f)["convergence"][rec["metric"]][rec["target"]] for f in runs]
        hits = [h for h in hits if h]
        assert int(rec["reached"]) == len(hits)
        if hits:
            assert float(rec["step_mean"]) == pytest.approx(
                statistics.fmean(h["step"] for h in hits)
            )

    image = plt.imread(sweep / "train_loss.png")
    height, width = image.shape[:2]
    assert width > 2.4 * height  # one panel per dataset, side by side, the legend beside
    grid = build_grid(load_runs(sweep))
    assert [p.title.split("\n")[0] for p in panels(grid)] == list(grid.cells)
    assert image[..., :3].std() > 0.05  # not blank
    spread = plt.imread(sweep / "distribution.png")
    assert spread.shape[1] > spread.shape[0] and spread[..., :3].std() > 0.05
    assert "![distribution over seeds](distribution.png)" in report
    assert "## Time to each target, relative to the baseline" in report
    cost = report.split("## Cost")[1]
    assert " / 8970 params, 0.00287 GFLOPs (1.00x)" in cost  # the 64-64-64-10 MLP's step


def test_loss_band_is_taken_in_log_space_at_the_steps_all_runs_share():
    a = (np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.1, 0.01]))
    b = (np.array([1.0, 2.0]), np.array([100.0, 0.001]))
    x, mean, low, high = band([a, b], log_scale=True)
    assert x.tolist() == [1.0, 2.0]
    assert np.log10(mean).tolist() == pytest.approx([1.0, -2.0])  # (0 + 2) / 2, (-1 - 3) / 2
    assert np.log10(high / mean).tolist() == pytest.approx([2 * 2**0.5, 2 * 2**0.5])
    assert (low > 0).all()
    x, mean, low, high = band([a, b], log_scale=False)  # a linear metric: plain mean, std
    assert mean.tolist() == pytest.approx([50.5, 0.0505])
    assert (high - mean).tolist() == pytest.approx(
        [2 * np.std([1, 100], ddof=1), 2 * np.std([0.1, 0.001], ddof=1)]
    )


@pytest.mark.slow  # the failing_sweep fixture runs a sweep
def test_report_refuses_a_metric_no_run_has(failing_sweep, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(failing_sweep[0]), "--metric", "final_test_accuracy"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "no run has metric 'final_test_accuracy'; valid: " in err and "final_test_acc," in err


@pytest.mark.slow
def test_impossible_combinations_are_refused_before_anything_trains(tmp_path):
    sweep = tmp_path / "sw"
    result = run_cli(
        ["-m", "dataset=digits,burgers", "activation=relu,adact", f"hydra.sweep.dir={sweep}"],
        tmp_path,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()  # one mistake, one line
    assert line.startswith(
        "adaptrun: error: 2 of 4 runs in this sweep cannot work; nothing was started: "
        "dataset: task classification cannot use dataset burgers"
    )
    assert line.endswith("(in: dataset=burgers activation=relu; dataset=burgers activation=adact)")
    assert not sweep.exists()


@pytest.mark.slow
def test_the_sweep_check_derives_stackable_values_as_composing_each_job_would():
    from omegaconf import OmegaConf

    from adaptrun.config.check import check_config
    from adaptrun.sweep.jobs import expand, preflight

    grid = [
        "experiment=jagtap_discontinuous",
        "activation=tanh,layerwise_slope",
        "activation.n=5,0.5,${slope_defaults.n}",  # n = 0.5 is refused
        "activation.slope_recovery=0,1",
        "seed=0,abc",  # not an integer
    ]
    jobs = expand(grid)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        problems, configs = preflight("config", jobs)
        expected_bad, good = {}, []
        for job in jobs:  # what composing each job gives
            try:
                good.append(compose(config_name="config", overrides=job))
                check_config(good[-1])
            except Exception as exc:
                expected_bad[" ".join(job)] = str(exc)
                good.pop()
    assert len(expected_bad) == 16 and len(good) == 8
    found = {problem.job: problem.reason for problem in problems}
    assert found.keys() == expected_bad.keys()
    for job, why in found.items():
        if "seed=abc" in job:
            assert "'abc'" in why and "seed" in why
        else:
            assert why == expected_bad[job].strip()
    assert [OmegaConf.to_container(c) for c in configs] == [OmegaConf.to_container(c) for c in good]


# ---- interrupted sweeps -------------------------------------------------------------

ARGS = ["trainer.epochs=40"]  # 920 steps: long enough to stop mid-way (submitit included)


def comparable(metrics: dict) -> dict:
    """without_timing: test_resume's comparison, less hparams (a sweep's carry its overrides)."""
    return {k: v for k, v in without_timing(metrics).items() if k != "hparams"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """seed=1 trained without interruption (in-process)."""
    folder = tmp_path_factory.mktemp("reference")
    return comparable(run(compose_config([*ARGS, "seed=1"]), folder))


@pytest.mark.slow
def test_a_stopped_sweep_resumes_when_run_again(reference, tmp_path):
    """SIGTERM stops the sweep at a step boundary; the rest is not started; the rerun
    resumes the stopped run to the metrics of an uninterrupted one."""
    sweep = tmp_path / "sw"
    args = ["-m", "seed=1", "trainer.epochs=40,2", f"hydra.sweep.dir={sweep}"]
    proc = start_cli(args, tmp_path)
    checkpoint = wait_for(sweep, f"*epochs=40/{FILENAME}", proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err  # the sweep's stop, as a run's
    assert "sweep of 2 runs: 2 interrupted" in err
    assert "not started: SIGTERM received" in err
    stopped = checkpoint.parent
    assert read_metrics(stopped)["status"] == "interrupted"

    result = run_cli(args, tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr
    assert "sweep of 2 runs: 2 completed" in result.stderr
    assert "resuming from" in (stopped / "adaptrun.log").read_text()
    assert comparable(read_metrics(stopped)) == reference


def _task_pid(folder_name: str) -> int | None:
    """The submitit task process that has the run folder's files open."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"submitit.core._submit" not in cmdline:
                continue
            targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(folder_name in t for t in targets):
            return int(pid)
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the job's process through /proc")
def test_submitit_requeues_a_preempted_job_which_resumes_from_its_checkpoint(reference, tmp_path):
    """Real submitit subprocesses: the preemption signal makes the run checkpoint and
    hand over to submitit, which requeues it; the requeued job resumes and completes."""
    sweep = tmp_path / "sw"
    args = [
        "-m",
        "hydra/launcher=submitit_local",
        "seed=1",
        "trainer.epochs=40,2",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = start_cli(args, tmp_path)
    checkpoint = wait_for(sweep, f"*epochs=40/{FILENAME}", proc, timeout=120)
    deadline = time.monotonic() + 30
    while (pid := _task_pid(checkpoint.parent.name)) is None:
        assert time.monotonic() < deadline, "no submitit task process found"
        time.sleep(0.05)
    os.kill(pid, signal.SIGUSR2)  # what submitit's local controller sends before a timeout
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    assert "sweep of 2 runs: 2 completed" in err
    log = (checkpoint.parent / "adaptrun.log").read_text()
    assert "stopped by SIGUSR2" in log and "resuming from" in log
    submitit_logs = "".join(p.read_text() for p in sweep.glob(".submitit/*/*_log.*"))
    assert "Requeued job" in submitit_logs
    assert comparable(read_metrics(checkpoint.parent)) == reference


def test_slurm_preset_configures_submitit_for_requeue():
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            "config",
            ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1
    assert launcher.signal_delay_s == 120 and launcher.max_num_timeout == 10
    assert launcher.array_parallelism == 64 and launcher.timeout_min == 240


def test_summary_of_a_sweeper_that_picks_its_own_jobs(tmp_path):
    """Optuna-like sweepers decide jobs as they go: the summary lists what recorded."""
    from adaptrun.sweep import jobs as sweep

    sweep.record_outcome(tmp_path, 2, tmp_path / "b", "failed", "boom", "lr=0.1")
    sweep.record_outcome(tmp_path, 0, tmp_path / "a", "completed", None, "lr=0.01")
    jobs = sweep.collect(tmp_path, None)
    assert [(j.num, j.overrides, j.outcome) for j in jobs] == [
        (0, "lr=0.01", "completed"),
        (2, "lr=0.1", "failed"),  # numbers as recorded, not positions
    ]
    assert "failed: b: boom" in sweep.console_summary(tmp_path, jobs)


def test_the_report_takes_which_way_is_better_from_the_runs_goals(tmp_path):
    """A task declares its goals; metrics.json records them and the report marks the best
    cell by them, not by the metric's name."""
    from adaptrun.report.runs import Cell, Grid, Run
    from adaptrun.report.tables import metric_table

    def cell(score: float) -> Cell:
        metrics = {"status": "completed", "final_test_score": score, "goals": {"test_score": "max"}}
        return Cell([Run(tmp_path, {}, metrics)])

    grid = Grid(["model.name"], ["activation.name"], {"mlp": {"a": cell(0.2), "b": cell(0.7)}})
    assert grid.goal("final_test_score") == "max"
    table = metric_table(grid, "final_test_score")
    best = table.loc[table["best"], "column"].tolist()
    assert best == ["b"]
    from adaptrun.runner.run import run

    metrics = run(compose_config(["trainer.epochs=1"]), tmp_path / "run")
    assert metrics["goals"] == {
        "train_loss": "min",
        "test_loss": "min",
        "test_acc": "max",
    }


@pytest.mark.parametrize(
    "args",
    [
        ["activation=relu,global", "seed=0,1,2", "trainer.epochs=2"],
        ["seed=range(0,3)", "activation=relu,tanh", "seed=5"],  # a later override wins
        ["+x=1,2", "y=[1,2]", "dataset=digits"],
    ],
)
def test_the_sweeps_jobs_are_those_of_hydras_basic_sweeper(args):
    """sweep.expand (on Hydra's public override parser) numbers jobs as the basic sweeper
    does, which the up-front check and the summary rely on."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from adaptrun.sweep.jobs import expand

    parsed = OverridesParser.create().parse_overrides(args)
    reference = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    assert expand(args) == reference


def test_a_stopped_sweeps_unlaunched_jobs_are_not_started_not_missing(tmp_path):
    """A job with no outcome record is an anomaly (missing) unless a stop signal ended the
    sweep before launching it: then it is 'not started', which the same command runs."""
    from adaptrun.sweep.jobs import collect, console_summary, record_outcome, render

    jobs = [["activation=relu"], ["activation=global"], ["activation=layerwise"]]
    record_outcome(tmp_path, 0, tmp_path / "activation=relu", "completed", None, "activation=relu")
    stopped = collect(tmp_path, jobs, "SIGTERM")
    assert [j.outcome for j in stopped] == ["completed", "not started", "not started"]
    assert stopped[1].error == "the sweep was stopped by SIGTERM before this job started"
    assert [j.outcome for j in collect(tmp_path, jobs)] == ["completed", "missing", "missing"]
    table = render(tmp_path, stopped)
    assert "| 1 | 0 | 0 | 0 | 0 | 2 | 0 | 3 |" in table  # completed ... not started, missing
    assert "sweep of 3 runs: 1 completed, 2 not started" in console_summary(tmp_path, stopped)
