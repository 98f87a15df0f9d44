"""Run folders tell the truth: a refused run leaves its folder as it was, one process at
a time writes a folder, and every failure (a full disk included) ends in metrics.json."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import compose_config, read_metrics, run_cli, small_disk, start_cli, stop_at, wait_for
from omegaconf import OmegaConf

from adaptrun.core.errors import UserError
from adaptrun.records.checkpoint import FILENAME
from adaptrun.runner.lock import LOCK, FolderBusy, folder_lock
from adaptrun.runner.run import run


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_a_run_refused_for_another_configs_finished_run_leaves_the_folder_as_it_was(tmp_path):
    first = compose_config(["trainer.epochs=1"])
    run(first, tmp_path / "run", hydra_files={"config.yaml": OmegaConf.to_yaml(first)})
    before = snapshot(tmp_path / "run")
    assert ".hydra/config.yaml" in before and "metrics.json" in before
    second = run_cli(["trainer.epochs=2", "hydra.run.dir=run"], cwd=tmp_path)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"adaptrun: error: {tmp_path / 'run'} holds a finished run of another config; "
        "choose another folder (hydra.run.dir / hydra.sweep.dir) to run this one"
    ]
    assert snapshot(tmp_path / "run") == before  # .hydra/config.yaml still says epochs=1


def test_a_run_refused_for_another_configs_checkpoint_writes_nothing(tmp_path):

    folder = tmp_path / "run"
    with pytest.MonkeyPatch.context() as patch:
        stop_at(patch, 30)
        from adaptrun.core.interrupt import STOP

        try:
            run(compose_config(["trainer.epochs=3"]), folder, hydra_files={"config.yaml": "a"})
        finally:
            STOP.signum = None
    assert (folder / FILENAME).exists()
    before = snapshot(folder)
    with pytest.raises(UserError, match="was written by a run with another config"):
        run(compose_config(["trainer.epochs=4"]), folder, hydra_files={"config.yaml": "b"})
    assert snapshot(folder) == before


@pytest.mark.slow
def test_a_second_process_in_a_folder_stops_with_one_line_and_the_first_goes_on(tmp_path):
    args = ["trainer.epochs=2000", "hydra.run.dir=run"]  # minutes: still running at the end
    first = start_cli(args, tmp_path)
    wait_for(tmp_path / "run", FILENAME, first)
    second = run_cli(args, cwd=tmp_path)
    assert second.returncode == 2
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith(f"adaptrun: error: another adaptrun process (pid {first.pid} on ")
    assert f"is writing the run in {tmp_path / 'run'}" in line
    assert first.poll() is None  # untouched by the second
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 128 + signal.SIGTERM, first.stderr.read()
    metrics = read_metrics(tmp_path / "run")
    assert metrics["status"] == "interrupted" and metrics["steps"] > 0


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_line(tmp_path, caplog):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK).write_text(json.dumps({"pid": pid, "host": "node7", "since": "yesterday"}))
    with caplog.at_level(logging.WARNING):
        metrics = run(compose_config(["trainer.epochs=1"]), folder)
    assert metrics["status"] == "completed"
    assert f"taking over the lock left by pid {pid} on node7, since yesterday" in caplog.text
    assert (folder / LOCK).read_text() == ""  # released


@pytest.mark.slow
def test_a_sweep_into_a_folder_another_sweep_holds_is_refused(tmp_path):
    sweep = tmp_path / "sweep"
    with folder_lock(sweep, "sweep"):
        result = run_cli(["-m", "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
        with pytest.raises(FolderBusy), folder_lock(sweep, "sweep"):  # really exclusive
            pass
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"is writing the sweep in {sweep}" in line
    assert sorted(p.name for p in sweep.iterdir()) == [LOCK]  # no job folder, no outcomes


@pytest.fixture
def full_disk(tmp_path):
    """A 300 KB filesystem: a run's checkpoint fills it during training."""
    with small_disk(tmp_path / "small", "300k") as mount:
        yield mount


@pytest.mark.slow
def test_a_full_disk_ends_in_metrics_json_with_one_line_and_no_stray_files(full_disk, tmp_path):
    result = run_cli(["trainer.epochs=40", f"hydra.run.dir={full_disk / 'run'}"], cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("adaptrun: error: run failed: OSError: [Errno 28] No space left")
    metrics = read_metrics(full_disk / "run")
    assert metrics["status"] == "failed" and "No space left on device" in metrics["error"]
    assert 0 < metrics["steps"] < 40 * 23
    leftovers = [p.name for p in full_disk.rglob("*") if p.name.endswith((".tmp", ".reserve"))]
    assert leftovers == []


@pytest.mark.slow
def test_a_sweep_on_a_full_disk_records_every_job_and_writes_its_summary(full_disk, tmp_path):
    sweep = full_disk / "sweep"
    args = ["-m", "seed=0,1,2", "trainer.epochs=40", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    summary = (sweep / "summary.md").read_text()
    assert "| 0 | 0 | 3 | 0 | 0 | 0 | 0 | 3 |" in summary  # three failed, none missing
    assert "No space left on device" in summary
    assert "not started: an earlier run of this sweep found the disk full" in summary
    assert not [p for p in sweep.rglob("*") if p.name.endswith((".tmp", ".reserve"))]
    assert os.listdir(sweep / ".adaptrun" / "outcomes")


def test_an_activation_without_a_slopes_hook_logs_its_parameters_under_their_names(tmp_path):
    """A user's activation needs no hook to be seen: its trainable parameters go to
    TensorBoard as activation/<module>.<parameter>; the slope family keeps slopes/ (n*a)."""
    import torch
    from conftest import events

    from adaptrun.activations import ActivationFactory, SlopeConfig
    from adaptrun.activations.family import MARK
    from adaptrun.records.board import Board

    class Snake(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.alpha = torch.nn.Parameter(torch.full((4,), 0.5))
            self.beta = torch.nn.Parameter(torch.tensor(2.0))
            self.frozen = torch.nn.Parameter(torch.ones(4), requires_grad=False)

        def forward(self, x):
            return x + torch.sin(self.alpha * x) ** 2 / self.alpha

    snake = Snake()
    setattr(snake, MARK, (4,))  # what the activation factory marks its modules with: the shape
    slope = ActivationFactory(SlopeConfig(variant="layerwise"))((4,))
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), snake, torch.nn.Linear(4, 4), slope)
    board = Board(tmp_path)
    board.slopes(model, 7)
    board.close()
    tags = events(tmp_path).Tags()
    assert tags["histograms"] == ["activation/1.alpha"]
    assert set(tags["scalars"]) == {"activation_mean/1.alpha", "activation/1.beta", "slopes/3"}
    assert events(tmp_path).Scalars("activation/1.beta")[0].value == 2.0


def test_the_dashboard_lists_the_swept_keys_and_the_seed_first():
    """Keys the runs were varied by and the seed are marked as differing, which
    TensorBoard's backend sorts first (the dashboard shows five); a key that follows the
    activation (the slope family's variant, absent for a fixed one) is not."""
    import copy

    from tensorboard.plugins.hparams import backend_context, metadata

    from adaptrun.records.hparams import domain, experiment, varying

    runs = [
        {"activation": "relu", "dataset": "digits", "seed": s, "optimizer.lr": 0.01}
        for s in (0, 1)
    ] + [
        {"activation": "global", "activation.variant": "global", "activation.n": n,
         "dataset": "digits", "seed": s, "optimizer.lr": 0.01}
        for n in (1, 10) for s in (0, 1)
    ]  # fmt: skip
    assert varying(runs) == {"activation", "activation.n", "seed"}
    assert varying(runs[:1]) == {"seed"}  # one run: only the seed
    summary = experiment(domain(runs), ["zz_summary/final_test_acc"], varying(runs))
    content = summary.value[0].metadata.plugin_data.content
    parsed = metadata.parse_experiment_plugin_data(content)
    shown = copy.deepcopy(parsed)
    backend_context._sort_and_reduce_to_hparams_limit(shown, 5)
    assert [h.name for h in shown.hparam_infos] == [
        "activation", "activation.n", "seed", "activation.variant", "dataset"]  # fmt: skip
    assert [m.name.tag for m in parsed.metric_infos] == ["zz_summary/final_test_acc"]


def test_the_metric_columns_start_with_the_tasks_primary_metric():
    from adaptrun.records.hparams import metric_tags

    goals = ["train_loss", "val_loss", "val_acc", "test_loss", "test_acc"]
    tags = [t.split("/", 1)[1] for t in metric_tags(goals, {"test_acc": [0.9]}, "test_acc")]
    assert tags[:4] == ["final_test_acc", "best_test_acc", "final_train_loss", "final_val_loss"]
    assert tags[-2:] == ["steps_to_test_acc_0.9", "epochs_to_test_acc_0.9"]
    assert metric_tags(["train_loss"], {})[0] == "zz_summary/final_train_loss"
