"""A hostile user's inputs and faults: every bad input is one line on stderr, exit 2 and
no file left behind; no symbolic link is followed; no run is counted twice; damaged files
are named, never a crash; a sweep stops as a whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import (
    compose_config,
    read_metrics,
    run_cli,
    run_cli_many,
    small_disk,
    start_cli,
    wait_for,
)
from hydra import initialize_config_dir

from adaptrun.config.options import config_dir
from adaptrun.config.resolvers import MAX_NAME, folder_name
from adaptrun.core.files import LinkRefused
from adaptrun.runner.run import run
from adaptrun.sweep.jobs import preflight


def only_line(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused command (exit 2)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("adaptrun: error: ")
    return lines[0]


# ---- bad input: one line, exit 2, nothing written -----------------------------------

BAD_INPUTS = [
    (["activation=neuronwise_slop"], "did you mean activation=neuronwise_slope"),
    (["trainer.epoch=5"], "trainer.epoch: no such key; did you mean trainer.epochs?"),
    (["+trainer.epoch=5"], "trainer.epoch: not a setting of the trainer; did you mean"),
    (["optimizer=sgd", "+optimizer.momentun=0.9"], "did you mean optimizer.momentum?"),
    (["+model.bogus=1"], "model.bogus: not a setting of model mlp"),
    (["+bogus_top=1"], "bogus_top: not a setting of the root config"),
    (["activation.n=abc"], "activation.n: Value 'abc' of type 'str' could not be converted"),
    (["targets.test_acc=5"], "targets.test_acc: must be a list of numbers"),
    (["trainer.figures_at=5"], "trainer.figures_at: must be a list"),
    (["trainer.figures=false", "trainer.figures_at=[5]"], "draws no figures, so none at"),
    (["trainer.test=maybe"], "trainer.test: must be true or false (got 'maybe')"),
    (["augmentation.ops=5"], "augmentation.ops: must be a list"),
    (["trainer=5"], "trainer: must be a mapping of the trainer settings (got 5)"),
    (["seed=[1"], "cannot read the overrides"),
    (["hydra.searchpath=[file:///no/such/folder]"], "hydra.searchpath: "),
    (["hydra.run.dir=" + "x" * 300], "longer than this file system allows"),
]


@pytest.mark.slow
def test_every_bad_input_is_one_line_exit_2_and_leaves_nothing(tmp_path):
    commands = []
    for i, (args, _) in enumerate(BAD_INPUTS):
        cwd = tmp_path / str(i)
        cwd.mkdir()
        if not any(a.startswith("hydra.run.dir=") for a in args):
            args = [*args, f"hydra.run.dir={cwd / 'run'}"]
        commands.append((args, cwd))
    results = run_cli_many(commands)
    for (args, expected), result, (_, cwd) in zip(BAD_INPUTS, results, commands, strict=True):
        assert expected in only_line(result), args
        assert os.listdir(cwd) == [], args


@pytest.mark.slow
def test_a_sweep_whose_check_would_crash_is_refused_in_one_line(tmp_path):
    """A container-typed key given a scalar used to raise inside the check, and the sweep
    then ran without its lock."""
    args = ["-m", "seed=0,1", "targets.test_acc=5", f"hydra.sweep.dir={tmp_path / 'sw'}"]
    sweepers = [(args, tmp_path), ([*args, "hydra/sweeper=stacked"], tmp_path)]
    for result in run_cli_many(sweepers):
        line = only_line(result)
        assert "2 of 2 runs in this sweep cannot work" in line
        assert "targets.test_acc: must be a list of numbers" in line
        assert not (tmp_path / "sw").exists()


@pytest.mark.slow
def test_a_user_class_typo_says_where_modules_are_looked_up(tmp_path):
    (tmp_path / "my_acts.py").write_text(
        "import torch\nclass Snake(torch.nn.Module):\n"
        "    def forward(self, x):\n        return x + torch.sin(x) ** 2\n"
    )
    args = ["activation=custom", "activation._target_=my_acts.Snak", "hydra.run.dir=run"]
    line = only_line(run_cli(args, cwd=tmp_path))
    assert "has no 'Snak'; did you mean my_acts.Snake?" in line
    assert str(tmp_path / "my_acts.py") in line
    assert set(os.listdir(tmp_path)) <= {"__pycache__", "my_acts.py"}  # no run folder


@pytest.mark.slow
def test_an_error_text_with_newlines_is_printed_on_one_line(tmp_path):
    (tmp_path / "bad_acts.py").write_text(
        "import torch\nclass Broken(torch.nn.Module):\n"
        "    def forward(self, x):\n        raise RuntimeError('first line\\nsecond line')\n"
    )
    args = ["activation=custom", "activation._target_=bad_acts.Broken", "hydra.run.dir=run"]
    result = run_cli([*args, "trainer.epochs=1"], cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "RuntimeError: first line; second line;" in line
    assert read_metrics(tmp_path / "run")["status"] == "failed"


# ---- symbolic links are never followed -------------------------------------------------


CONTROL_LINKS = [".adaptrun.lock", ".adaptrun.reserve", "metrics.json.tmp", ".hydra"]


@pytest.mark.slow
def test_a_symlinked_control_file_is_refused_and_its_target_untouched(tmp_path):
    commands = []
    for name in CONTROL_LINKS:
        cwd = tmp_path / name.strip(".")
        folder = cwd / "R"
        folder.mkdir(parents=True)
        (cwd / "victim").write_text("someone else's file\n")
        (folder / name).symlink_to(cwd / "victim")
        commands.append(([f"hydra.run.dir={folder}", "trainer.epochs=1"], cwd))
    for name, result, (_, cwd) in zip(CONTROL_LINKS, run_cli_many(commands), commands, strict=True):
        folder = cwd / "R"
        assert f"{folder / name} is a symbolic link" in only_line(result)
        assert (cwd / "victim").read_text() == "someone else's file\n"
        assert (folder / name).is_symlink() and os.listdir(folder) == [name]


@pytest.mark.slow
def test_a_symlinked_outcomes_folder_deletes_nothing(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.json").write_text("{}")
    sweep = tmp_path / "sw"
    (sweep / ".adaptrun").mkdir(parents=True)
    (sweep / ".adaptrun" / "outcomes").symlink_to(elsewhere)
    args = ["-m", "seed=0,1", "trainer.epochs=1", f"hydra.sweep.dir={sweep}"]
    line = only_line(run_cli(args, cwd=tmp_path))
    assert "outcomes is a symbolic link" in line
    assert (elsewhere / "keep.json").read_text() == "{}"


def test_a_symlinked_tmp_file_is_refused_by_the_run_itself(tmp_path):
    """Through run(), as a stacked job's run folders are written: the check covers each."""
    victim = tmp_path / "victim"
    victim.write_text("x")
    folder = tmp_path / "run"
    (folder / "seed=1").mkdir(parents=True)
    (folder / "seed=1" / "metrics.json.tmp").symlink_to(victim)
    with pytest.raises(LinkRefused):
        run(compose_config(["trainer.stack=2", "trainer.epochs=1"]), folder)
    assert victim.read_text() == "x"
    assert not (folder / ".adaptrun.lock").exists()


# ---- names: capped in bytes ------------------------------------------------------------


def test_folder_names_are_capped_in_bytes_at_a_character_boundary():
    name = folder_name("activation.tag=" + "漢" * 90)
    assert len(name.encode()) <= MAX_NAME
    assert name.split("~")[0] == "activation.tag=" + "漢" * ((MAX_NAME - 9 - 15) // 3)
    assert folder_name("seed=1") == "seed=1"


# ---- runs counted twice ----------------------------------------------------------------


@pytest.mark.slow
def test_a_sweep_that_would_train_a_seed_twice_is_refused(tmp_path):
    args = ["-m", "trainer.stack=2", "seed=0,1", f"hydra.sweep.dir={tmp_path / 'sw'}"]
    line = only_line(run_cli(args, cwd=tmp_path))
    assert "1 of 2 runs in this sweep cannot work" in line
    assert "trains seed=1 with the same config as job #0 (trainer.stack=2 seed=0)" in line
    assert line.endswith("(in: trainer.stack=2 seed=1)")
    assert not (tmp_path / "sw").exists()


@pytest.mark.slow
def test_the_stacking_sweeper_refuses_trainer_stack():
    jobs = [["trainer.stack=2", "seed=0"], ["trainer.stack=2", "seed=2"]]
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        problems, _ = preflight("config", jobs, stacked=True)
        assert [p.job for p in problems] == ["trainer.stack=2 seed=0", "trainer.stack=2 seed=2"]
        assert all("hydra/sweeper=stacked stacks the sweep's runs" in p.reason for p in problems)
        assert preflight("config", jobs)[0] == []  # seeds 0, 1 and 2, 3: each once
        twice = [["trainer.stack=2", "seed=0"], ["trainer.stack=2", "seed=1"]]
        [problem] = preflight("config", twice)[0]
        assert problem.job == "trainer.stack=2 seed=1"


# ---- refusals touch nothing; a finished run is never trained twice ---------------------


def test_a_run_rechecks_for_a_finished_run_once_it_holds_the_lock(tmp_path, monkeypatch):
    """Another process finishes the run while this one waits for the folder: it is
    skipped, not trained a second time."""
    import adaptrun.runner.run as run_module

    real_lock = run_module.folder_lock
    args = ["trainer.epochs=1"]
    folder = tmp_path / "run"

    def lock_after_another_finished(path, *rest):
        monkeypatch.setattr(run_module, "folder_lock", real_lock)
        run(compose_config(args), folder)  # the other process, start to end
        return real_lock(path, *rest)

    monkeypatch.setattr(run_module, "folder_lock", lock_after_another_finished)
    metrics = run(compose_config(args), folder)
    assert metrics.get("skipped") is True
    assert metrics["wall_seconds"] == read_metrics(folder)["wall_seconds"]


@pytest.mark.slow
@pytest.mark.parametrize("content", ["[]", "null", "{not json"])
def test_a_damaged_metrics_json_trains_again_with_one_warning(content, tmp_path, caplog):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.json").write_text(content)
    metrics = run(compose_config(["trainer.epochs=1"]), folder)
    assert metrics["status"] == "completed"
    assert f"{folder / 'metrics.json'} is damaged" in caplog.text


# ---- the disk ------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 100 KB file system: too small even for the run's 256 KB reserve."""
    with small_disk(tmp_path / "tiny", "100k") as mount:
        yield mount


@pytest.mark.slow
def test_a_disk_nearly_full_at_start_fails_in_one_line_with_its_record(tiny_disk, tmp_path):
    folder = tiny_disk / "run"
    result = run_cli([f"hydra.run.dir={folder}"], cwd=tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "No space left on device (not even 256 KB for the records" in line
    metrics = read_metrics(folder)
    assert metrics["status"] == "failed" and "No space left on device" in metrics["error"]
    assert not [p for p in folder.iterdir() if p.name.startswith(("events.", ".adaptrun.res"))]


# ---- signals between the jobs of a sweep ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_between_jobs_stops_the_sweep_with_its_summary(signum, tmp_path):
    sweep = tmp_path / "sw"
    args = ["-m", "seed=0,1,2", "trainer.epochs=30", f"hydra.sweep.dir={sweep}"]
    proc = start_cli(args, tmp_path)
    wait_for(sweep, "seed=0,*/metrics.json", proc)  # the first job has ended
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 128 + signum, err
    assert f"adaptrun: sweep stopped by {signal.Signals(signum).name}" in err
    summary = (sweep / "summary.md").read_text()
    assert "| 0 | completed | seed=0 trainer.epochs=30 |" in summary
    assert "| 2 | interrupted | seed=2 trainer.epochs=30 |" in summary
    assert f"not started: {signal.Signals(signum).name} received |" in summary.splitlines()[-1]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(c) for c in text]
    return found


@pytest.mark.slow
def test_a_killed_parallel_sweep_stops_its_workers(tmp_path):
    sweep = tmp_path / "sw"
    args = [
        "-m",
        "hydra/launcher=parallel",
        "hydra.launcher.n_jobs=2",  # 1 would run the job in this process: no worker
        "seed=0,1",
        "trainer.epochs=400",
        f"hydra.sweep.dir={sweep}",
    ]
    proc = start_cli(args, tmp_path)
    checkpoint = wait_for(sweep, "seed=0,*/checkpoint.pt", proc, timeout=120)
    workers = _children(proc.pid)
    assert workers, "the launcher started no worker processes"
    proc.kill()
    proc.communicate()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()]
    for w in alive:
        os.kill(w, signal.SIGKILL)
    assert not alive, "workers went on training after their sweep was killed"
    assert json.loads((checkpoint.parent / "metrics.json").read_text())["status"] == "interrupted"


# ---- damaged records: named, never a crash ------------------------------------------


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory) -> Path:
    """Three completed runs of one column (seeds 0, 1, 2)."""
    cwd = tmp_path_factory.mktemp("sweep")
    sweep = cwd / "sw"
    args = ["-m", "seed=0,1,2", "trainer.epochs=2", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return sweep


def _copy(sweep: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(sweep, tmp_path / "sw")
    return tmp_path / "sw"


@pytest.mark.slow
def test_the_report_names_damaged_files_and_shows_every_recorded_run(small_sweep, tmp_path):
    from adaptrun.report.cli import report
    from adaptrun.sweep.jobs import record_outcome

    sweep = _copy(small_sweep, tmp_path)
    (sweep / "seed=1,trainer.epochs=2" / "metrics.json").write_text("[]")
    (sweep / "seed=2,trainer.epochs=2" / ".hydra" / "config.yaml").write_text("[unclosed")
    # a job the sweep recorded that never started (no folder at all)
    record_outcome(
        sweep, 3, sweep / "seed=3,trainer.epochs=2", "interrupted", "not started: SIGTERM",
        "seed=3 trainer.epochs=2",
    )  # fmt: skip
    report(sweep)
    text = (sweep / "report.md").read_text()
    assert "seed=1,trainer.epochs=2/metrics.json is damaged (ValueError: it holds list" in text
    assert "seed=2,trainer.epochs=2/.hydra/config.yaml is damaged" in text
    results = (sweep / "results.csv").read_text().splitlines()
    [row] = results[1:]  # one cell: the four runs of relu on mlp/digits
    assert ",4,2," in row  # 4 runs, 2 completed (seed 0; seed 2 placed by its record)
    assert "1 missing" in row and "1 not started" in row


@pytest.mark.slow  # the small_sweep fixture runs a sweep
def test_a_truncated_event_file_is_named_and_left_out_of_the_curve(small_sweep, tmp_path, caplog):
    from adaptrun.report.curves import Events
    from adaptrun.report.runs import read_sweep

    sweep = _copy(small_sweep, tmp_path)
    [events] = (sweep / "seed=0,trainer.epochs=2").glob("events.out.tfevents.*")
    events.write_bytes(events.read_bytes()[:200])
    runs = {r.folder.name: r for r in read_sweep(sweep).runs}
    events = Events()
    assert events.curve(runs["seed=0,trainer.epochs=2"], "train/loss") is None
    assert "end at step" in caplog.text or "cannot be read" in caplog.text
    assert events.curve(runs["seed=1,trainer.epochs=2"], "train/loss") is not None


@pytest.mark.slow  # the small_sweep fixture runs a sweep
def test_the_report_counts_a_repeated_run_once_and_says_so(small_sweep, tmp_path):
    import shutil

    from adaptrun.report.runs import read_sweep

    sweep = _copy(small_sweep, tmp_path)
    shutil.copytree(sweep / "seed=0,trainer.epochs=2", sweep / "again" / "seed=0")
    swept = read_sweep(sweep)
    assert len(swept.runs) == 3
    assert any("1 run(s) repeat the config and seed of another" in n for n in swept.notes)


def test_a_damaged_outcome_record_counts_its_job_as_missing(small_sweep, tmp_path):
    from adaptrun.sweep.jobs import collect, outcomes_dir

    sweep = _copy(small_sweep, tmp_path)
    (outcomes_dir(sweep) / "1.json").write_text("null")
    jobs = collect(sweep, [["seed=0"], ["seed=1"], ["seed=2"]])
    assert [j.outcome for j in jobs] == ["completed", "missing", "completed"]
    assert "its outcome record is damaged (NoneType, not an object)" in jobs[1].error


def test_only_the_sweeps_own_children_watch_it(monkeypatch):
    """A SLURM job inherits the variable on another machine; a process the sweep did not
    start itself has another parent: neither may stop itself."""
    import socket
    import threading

    from adaptrun.core.interrupt import SWEEP_PID, stop_with_the_sweep

    for value in (f"elsewhere:{os.getppid()}", f"{socket.gethostname()}:{os.getpid()}"):
        monkeypatch.setenv(SWEEP_PID, value)
        stop_with_the_sweep()
        assert "adaptrun-sweep-watch" not in [t.name for t in threading.enumerate()]
