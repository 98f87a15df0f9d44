"""hydra/sweeper=tuned: the same search for every column on tuning seeds with a validation
split and no test split, each column's choice by its validation mean, its evaluation
seeds trained at it; stacked, recorded, resumable."""

from __future__ import annotations

import json
import math
import signal
import statistics

import pytest
import yaml
from conftest import compose_config, events, read_metrics, run_cli, start_cli, wait_for
from hydra.core.override_parser.overrides_parser import OverridesParser

from adaptrun.core.errors import UserError
from adaptrun.data.images import Split
from adaptrun.runner.run import run
from adaptrun.sweep import tuning

TUNED = [
    "-m",
    "hydra/sweeper=tuned",
    "hydra.searchpath=[file://my_conf]",  # the user's activation and preset
    "experiment=jagtap_discontinuous,digits_small",
    "activation=tanh,snake",
    "trainer.max_steps=40",
    "trainer.eval_every_epochs=20",
    "tune.optimizer.lr=tag(log,interval(1e-3,1e-2))",
    "hydra.sweeper.budget=2",
    "hydra.sweeper.seeds=2",
    "seed=0,1",
]
SNAKE = """
import torch
from torch import nn


class Snake(nn.Module):
    def __init__(self, shape, alpha=1.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.full(shape, float(alpha)))

    def forward(self, x):
        return x + torch.sin(self.alpha * x) ** 2 / self.alpha
"""


def user_files(folder) -> None:
    """A user's activation class with an option of its own, and a preset of their own."""
    (folder / "my_acts.py").write_text(SNAKE)
    (folder / "my_conf" / "activation").mkdir(parents=True)
    (folder / "my_conf" / "activation" / "snake.yaml").write_text(
        "name: snake\nfamily: custom\n_target_: my_acts.Snake\nalpha: 0.5\n"
    )
    (folder / "my_conf" / "experiment").mkdir()
    (folder / "my_conf" / "experiment" / "digits_small.yaml").write_text(
        "# @package _global_\nmodel:\n  width: 32\ntrainer:\n  batch_size: 128\n"
    )


def parsed(*overrides: str) -> list:
    return OverridesParser.create().parse_overrides(list(overrides))


def test_candidates_are_the_given_values_or_budget_points_of_the_interval():
    (log,) = parsed("tune.optimizer.lr=tag(log,interval(1e-4,1e-2))")
    assert tuning.candidates(log, 3) == [
        "optimizer.lr=0.0001",
        "optimizer.lr=0.001",
        "optimizer.lr=0.01",
    ]
    (linear,) = parsed("tune.optimizer.weight_decay=interval(0,1e-3)")
    assert tuning.candidates(linear, 3) == [
        f"optimizer.weight_decay={v}" for v in (0.0, 0.0005, 0.001)
    ]
    (listed,) = parsed("tune.model.width=16,32")
    assert tuning.candidates(listed, 6) == ["model.width=16", "model.width=32"]
    (backwards,) = parsed("tune.optimizer.lr=tag(log,interval(0,1e-2))")
    with pytest.raises(UserError, match="0 < low < high"):
        tuning.candidates(backwards, 3)
    tuned, rest = tuning.split_tuned(
        parsed("tune.optimizer.lr=1e-3,1e-2", "tune.model.width=8,16", "seed=0,1")
    )
    search = tuning.search_of(tuned, 6, 3, 1000)
    assert len(search.points) == 4 and search.seeds == [1000, 1001, 1002]
    assert search.keys == ["optimizer.lr", "model.width"] and len(rest) == 1
    with pytest.raises(UserError, match=r"hydra\.sweeper\.budget: must be an integer >= 1"):
        tuning.search_of(tuned, 0, 3, 1000)
    columns = tuning.columns_of([["activation=relu", "seed=1001"]])
    with pytest.raises(UserError, match="1001 are also tuning seeds"):
        tuning.check_seeds(columns, search)


def test_the_choice_is_the_best_validation_mean_and_a_diverged_run_cannot_win(tmp_path):
    search = tuning.Search(
        [["optimizer.lr=0.1"], ["optimizer.lr=0.01"], ["optimizer.lr=0.001"]], [7, 8]
    )
    column = tuning.Column(["activation=relu"], metric="val_acc", goal="max")
    outcomes = [  # per candidate and seed: (status, final val_acc)
        ("completed", 0.99), ("diverged", None),  # the best single run, but one diverged
        ("completed", 0.80), ("completed", 0.84),
        ("completed", 0.90), ("failed", None),  # a run that recorded nothing usable
    ]  # fmt: skip
    folders = []
    for num, (status, value) in enumerate(outcomes):
        folder = tmp_path / str(num)
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"status": status, "final_val_acc": value}))
        folders.append(folder)
    (choice,) = tuning.choose([column], search, folders)
    assert choice.chosen == ["optimizer.lr=0.01"]
    means = [s["mean"] for s in choice.scores]
    assert means[0] == -math.inf and means[1] == pytest.approx(0.82) and means[2] is None
    assert choice.scores[2]["missing"] == ["5"] and choice.scores[0]["diverged"] == 1


def test_a_tuning_run_never_holds_the_test_split(tmp_path, monkeypatch):
    """The classification run of a tuned sweep's search: the test split its loader reads
    (torchvision reads both splits' files) is dropped before the task holds it; one that
    is placed, normalised or scored fails the run."""
    import adaptrun.tasks.classification as classification

    class Untouchable(Split):
        def __getattribute__(self, name: str):
            raise AssertionError(f"the tuning run read the test split ({name})")

    real = classification.load_dataset

    def loaded(*args, **kwargs):
        data = real(*args, **kwargs)
        fake = object.__new__(Untouchable)
        return type(data)(
            data.name, data.train, fake, data.num_classes, data.mean, data.std, data.val
        )

    monkeypatch.setattr(classification, "load_dataset", loaded)
    cfg = compose_config(["trainer.epochs=1", "dataset.val_fraction=0.1", "trainer.test=false"])
    metrics = run(cfg, tmp_path / "run")
    assert metrics["status"] == "completed", metrics.get("error")
    assert 0 < metrics["final_val_acc"] <= 1
    assert not [k for k in metrics if "test" in k]
    with pytest.raises(AssertionError, match="read the test split"):
        run(compose_config(["trainer.epochs=1"]), tmp_path / "tested")


def _scores(sweep, column: dict) -> dict[str, list[float]]:
    """A column's tuning candidates' final validation values, from the runs' own records
    (their overrides.yaml: long folder names are cut)."""
    found: dict[str, list[float]] = {}
    mine = set(column["overrides"]) | set(column["validation"])
    for path in sorted((sweep / "tune").glob("*/metrics.json")):
        given = set(yaml.safe_load((path.parent / ".hydra" / "overrides.yaml").read_text()))
        if not mine <= given:
            continue
        assert {"trainer.test=false", "trainer.figures=false"} <= given
        (lr,) = [o for o in given if o.startswith("optimizer.lr=")]
        found.setdefault(lr, []).append(read_metrics(path.parent)[f"final_{column['metric']}"])
    return found


@pytest.mark.slow
def test_a_tuned_two_preset_sweep_of_a_users_activation_resumes_chooses_and_cards(tmp_path):
    """Stopped during the second column's search, then run again: the first column's
    finished search is not redone; each column's choice is its best validation mean; its
    evaluation seeds trained at it and were tested, the search never was; the card has a
    section per preset and the verdict per activation."""
    user_files(tmp_path)
    sweep = tmp_path / "sweep"
    args = [*TUNED, f"hydra.sweep.dir={sweep}", "trainer.checkpoint_every=5"]
    proc = start_cli(args, tmp_path)
    wait_for(sweep / "tune", "stack-4x4/checkpoint.pt", proc, timeout=120)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not (sweep / "tuning.json").exists()  # nothing chosen from a partial search
    done = run_cli(args, tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "sweep of 24 runs: 20 completed, 4 skipped" in done.stderr
    # the search: 4 columns x 2 candidates x 2 tuning seeds, stacked by column
    stacks = sorted(p.name for p in (sweep / "tune").glob("stack-*"))
    assert stacks == ["stack-0x4", "stack-12x4", "stack-4x4", "stack-8x4"]
    record = json.loads((sweep / "tuning.json").read_text())
    assert record["tuned"] == ["optimizer.lr"] and record["tuning_seeds"] == [1000, 1001]
    metrics = [(c["metric"], c["goal"], c["validation"]) for c in record["columns"]]
    assert (
        metrics
        == [("val_rel_l2", "min", ["dataset.n_val=1000"])] * 2
        + [("val_acc", "max", ["dataset.val_fraction=0.1"])] * 2
    )
    for column in record["columns"]:
        scores = _scores(sweep, column)
        assert len(scores) == 2 and all(len(v) == 2 for v in scores.values())
        means = {lr: statistics.fmean(v) for lr, v in scores.items()}
        pick = max if column["goal"] == "max" else min
        assert column["chosen"] == [pick(means, key=means.get)]
        assert {c["point"][0]: c["mean"] for c in column["candidates"]} == pytest.approx(means)
        for seed in (0, 1):
            wanted = {*column["overrides"], column["chosen"][0], f"seed={seed}"}
            (folder,) = [
                f
                for f in sweep.iterdir()
                if (f / ".hydra").is_dir()
                and "adaptrun_stack" not in f.name
                and wanted <= set(yaml.safe_load((f / ".hydra" / "overrides.yaml").read_text()))
            ]
            ran = read_metrics(folder)
            primary = "final_test_rel_l2" if column["metric"] == "val_rel_l2" else "final_test_acc"
            assert ran["status"] == "completed" and ran[primary] > 0
            assert not [k for k in ran if k.startswith("final_val")]  # trained as configured
    for path in (sweep / "tune").glob("*/metrics.json"):
        assert not [k for k in json.loads(path.read_text()) if "test" in k]
        assert not [t for t in events(path.parent).Tags()["scalars"] if t.startswith("test/")]
    assert (sweep / "tuning.md").read_text().count("**chosen**") == 4
    # the report: the evaluation runs only, and the card
    from adaptrun.report.cli import report

    report(sweep)
    assert "8 runs. " in (sweep / "report.md").read_text()
    card = (sweep / "card.md").read_text()
    assert "## mlp/discontinuous: final test_rel_l2 (lower is better)" in card
    assert "## mlp/digits: final test_acc (higher is better)" in card
    rows = [line for line in card.splitlines() if line.startswith("| snake |")]
    assert len(rows) == 2 and all("lr=" in r and "(1." not in r.split("|")[4] for r in rows)
    (verdict,) = [line for line in card.splitlines() if line.startswith("- **snake**")]
    assert "of 2 tasks (Holm-adjusted p < 0.05)" in verdict


def test_a_tuned_sweep_that_cannot_work_is_refused_before_anything_starts(tmp_path):
    sweep = tmp_path / "sweep"
    base = ["-m", "hydra/sweeper=tuned", "experiment=jagtap_discontinuous", "activation=tanh"]
    for extra, message in [
        (["tune.optimizer.lr=1e-3,1e-2", "seed=1000,1"], "seed: 1000 are also tuning seeds"),
        (["tune.optimizer.lrr=1e-3,1e-2"], "optimizer.lrr: no such key"),
    ]:
        done = run_cli([*base, *extra, f"hydra.sweep.dir={sweep}"], tmp_path)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not sweep.exists()
