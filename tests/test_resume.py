"""Checkpoints and exact resume: a run stopped by a signal and started again in its folder
ends with exactly the metrics and TensorBoard points of a run that was never stopped."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from conftest import comparable, compose_config, events, read_metrics, start_cli, stop_at, wait_for
from tbparse import SummaryReader

from adaptrun.core.errors import UserError
from adaptrun.core.interrupt import STOP
from adaptrun.records.checkpoint import FILENAME, Position, load
from adaptrun.runner.run import run

ARGS = ["trainer.epochs=25", "seed=3"]  # 575 steps: long enough to stop mid-way
OVERRIDES = dict(a.split("=") for a in ARGS)


def loss_points(run_dir: Path) -> list[tuple[int, float]]:
    acc = events(run_dir)
    return [(e.step, e.value) for e in acc.Scalars("train/loss")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same configuration trained without interruption."""
    folder = tmp_path_factory.mktemp("reference")
    run(compose_config(ARGS), folder, OVERRIDES)  # the CLI puts its overrides in hparams
    return folder


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A CLI run sent Ctrl-C (SIGINT) once its first epoch-end checkpoint exists; SIGUSR1
    (stop_at below) and SIGTERM (test_sweep.py) take the same path."""
    cwd = tmp_path_factory.mktemp("stopped")
    folder = cwd / "run"
    proc = start_cli([*ARGS, f"hydra.run.dir={folder}"], cwd)
    wait_for(folder, FILENAME, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return folder, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_a_stop_signal_checkpoints_and_exits_cleanly(stopped):
    folder, proc = stopped
    assert proc.returncode == 128 + signal.SIGINT, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"hydra.run.dir={folder}" in proc.stderr.splitlines()[-1]  # says how to resume
    metrics = read_metrics(folder)
    assert metrics["status"] == "interrupted"
    state = torch.load(folder / FILENAME, weights_only=True)
    assert state["position"]["step"] == metrics["steps"]
    assert 0 < metrics["steps"] < 2300
    assert set(state) >= {"model", "optimizer", "schedule", "rng", "tracker", "position"}


@pytest.mark.slow
def test_resumed_run_ends_with_the_metrics_of_an_uninterrupted_run(
    stopped, reference, tmp_path, caplog
):
    folder = tmp_path / "run"
    shutil.copytree(stopped[0], folder)
    steps_before = read_metrics(folder)["steps"]
    with caplog.at_level(logging.INFO):
        run(compose_config(ARGS), folder, OVERRIDES)  # the CLI's resume: see test_sweep.py
    assert f"resuming from {folder / FILENAME} at step {steps_before}" in caplog.text
    assert comparable(read_metrics(folder)) == comparable(read_metrics(reference))
    assert not (folder / FILENAME).exists()  # a finished run keeps no checkpoint
    # TensorBoard (and tbparse, which reads each file on its own) sees every point once.
    assert loss_points(folder) == loss_points(reference)
    scalars = SummaryReader(str(folder), event_types={"scalars"}).scalars
    steps = scalars[scalars["tag"] == "train/loss"]["step"].tolist()
    assert steps == sorted(set(steps)) == [s for s, _ in loss_points(reference)]


@pytest.mark.slow
def test_a_corrupt_checkpoint_is_reported_and_the_run_starts_over(
    stopped, reference, tmp_path, caplog
):
    folder = tmp_path / "run"
    shutil.copytree(stopped[0], folder)
    data = (folder / FILENAME).read_bytes()
    (folder / FILENAME).write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        metrics = run(compose_config(ARGS), folder, OVERRIDES)
    assert "is corrupt" in caplog.text and "starting from scratch" in caplog.text
    assert (folder / f"{FILENAME}.corrupt").exists()
    assert comparable(metrics) == comparable(read_metrics(reference))
    assert loss_points(folder) == loss_points(reference)  # the old try's points are gone


@pytest.mark.slow  # the stopped fixture trains a run
def test_a_checkpoint_of_another_config_is_refused(stopped, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(stopped[0], folder)
    (folder / ".adaptrun.lock").unlink()
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    with pytest.raises(UserError, match=r"another config \(optimizer.lr"):
        run(compose_config([*ARGS, "optimizer.lr=0.01"]), folder)
    assert (folder / FILENAME).exists()  # nothing lost
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before  # no lock made


def _crafted(state: dict, how: str) -> None:
    """A checkpoint that unpickles but must not be applied."""
    if how == "shapes":
        name = next(iter(state["model"]))
        state["model"][name] = torch.zeros(3, 3)
    elif how == "moment_shapes":
        moments = state["optimizer"]["state"][0]
        moments["exp_avg"] = torch.zeros(7)
    elif how == "rng":
        state["rng"]["torch"] = torch.zeros(3, dtype=torch.uint8)
    elif how == "tracker":
        state["tracker"] = {}
    elif how == "past_the_end":  # would say completed after no more training
        state["position"] = {"step": 10**6, "epoch": 25, "batch": 0}
    elif how == "learning_rate":  # would train at another rate than the recorded one
        for group in state["optimizer"]["param_groups"]:
            group["lr"] = 0.5
    elif how == "initial_learning_rate":
        for group in state["optimizer"]["param_groups"]:
            group["initial_lr"] = group["lr"] = 0.5


@pytest.mark.parametrize(
    "how",
    [
        "shapes",
        "moment_shapes",
        "rng",
        "tracker",
        "past_the_end",
        "learning_rate",
        "initial_learning_rate",
    ],
)
@pytest.mark.slow
def test_a_checkpoint_that_does_not_apply_is_set_aside_and_the_run_starts_over(
    how, stopped, reference, tmp_path, caplog
):
    folder = tmp_path / "run"
    shutil.copytree(stopped[0], folder)
    state = torch.load(folder / FILENAME, weights_only=True)
    _crafted(state, how)
    torch.save(state, folder / FILENAME)
    with caplog.at_level(logging.WARNING):
        metrics = run(compose_config(ARGS), folder, OVERRIDES)
    assert len([r for r in caplog.records if "is corrupt" in r.getMessage()]) == 1
    assert "starting from scratch" in caplog.text
    assert (folder / f"{FILENAME}.corrupt").exists()
    assert comparable(metrics) == comparable(read_metrics(reference))


def test_a_checkpoint_that_is_not_ours_is_moved_aside(tmp_path):
    path = tmp_path / FILENAME
    torch.save({"format": 99}, path)
    assert load(path, {}) is None
    assert not path.exists() and (tmp_path / f"{FILENAME}.corrupt").exists()


def test_checkpoints_every_n_steps_record_where_the_loop_stood(tmp_path, monkeypatch):
    """checkpoint_every=N saves mid-epoch; the position names the batch within the epoch."""
    saved: list[Position] = []
    from adaptrun.records import checkpoint

    original = checkpoint.Checkpoints.save
    monkeypatch.setattr(
        checkpoint.Checkpoints, "save", lambda self, p: (saved.append(p), original(self, p))
    )
    run(compose_config(["trainer.epochs=2", "trainer.checkpoint_every=10"]), tmp_path)
    # digits: 23 steps per epoch; the last epoch end is not saved (nothing left to resume)
    assert saved == [
        Position(10, 0, 10),
        Position(20, 0, 20),
        Position(23, 1, 0),
        Position(30, 1, 7),
        Position(40, 1, 17),
    ]


@pytest.fixture
def clear_stop():
    yield
    STOP.signum = None  # a stop is sticky within a process (a sweep starts no more runs)


@pytest.mark.parametrize(
    "args",
    [
        ["optimizer=sgd", "optimizer.schedule=cosine", "activation=neuronwise_slope"],
        ["optimizer.schedule=step", "optimizer.milestones=[1,2]", "activation=adact"],
        [  # BatchNorm buffers, channel-wise slopes and every augmentation op's generator
            "model=vgg1",
            "activation=neuronwise",
            "activation.granularity=channel",
            "augmentation=custom",
            "augmentation.ops=[{op: crop, padding: 1}, {op: flip}, {op: affine, degrees: 10},"
            " {op: cutout, size: 2}]",
        ],
    ],
    ids=["sgd-cosine-slopes", "adam-step-adact", "vgg-bn-augment"],
)
@pytest.mark.slow
def test_exact_resume_mid_epoch(args, tmp_path, monkeypatch, clear_stop):
    args = [*args, "trainer.epochs=3", "trainer.batch_size=128"]  # 12 steps per epoch
    reference = run(compose_config(args), tmp_path / "reference")
    with monkeypatch.context() as patch:
        stop_at(patch, 17)  # mid second epoch
        stopped = run(compose_config(args), tmp_path / "run")
    assert stopped["status"] == "interrupted" and stopped["steps"] == 17
    STOP.signum = None  # a new process, as after a requeue
    resumed = run(compose_config(args), tmp_path / "run")
    assert comparable(resumed) == comparable(reference)
    assert loss_points(tmp_path / "run") == loss_points(tmp_path / "reference")


@pytest.mark.slow
def test_a_run_stopped_in_its_lbfgs_phase_redoes_that_phase_from_its_checkpoint(
    tmp_path, monkeypatch, clear_stop
):
    args = [
        "task=function",
        "dataset=discontinuous",
        "trainer.epochs=30",
        "trainer.lbfgs_steps=5",
        "trainer.eval_every=5",
    ]
    reference = run(compose_config(args), tmp_path / "reference")

    folder = tmp_path / "stopped"
    with monkeypatch.context() as patch:
        stop_at(patch, 33)  # the third L-BFGS iteration (30 full-batch Adam steps before)
        stopped = run(compose_config(args), folder)
    assert stopped["status"] == "interrupted" and stopped["steps"] == 33
    assert torch.load(folder / FILENAME, weights_only=True)["position"]["step"] == 30
    STOP.signum = None  # a new process, as after a requeue
    resumed = run(compose_config(args), folder)
    assert comparable(resumed) == comparable(reference)
    assert loss_points(folder) == loss_points(tmp_path / "reference")


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    """Nothing in today's models draws from the global generators while training (data
    order and augmentation have their own), but dropout would: they are saved too."""
    import random

    import numpy as np

    from adaptrun.records.checkpoint import rng_state, save_atomic, set_rng_state

    save_atomic(tmp_path / "rng.pt", {"rng": rng_state()})
    first = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert first[:2] == again[:2] and torch.equal(first[2], again[2])
