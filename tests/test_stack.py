"""Stacked runs (trainer.stack): R seeds trained as one vmapped model give each run the
folder, metrics.json and TensorBoard points a separate run of that seed gives."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_same_run, compose_config, events, read_metrics, run_cli, stop_at

from adaptrun.config.check import check_config
from adaptrun.core.errors import ConfigError
from adaptrun.report import report
from adaptrun.runner.run import run

CASES = {
    # per-neuron slopes with slope recovery: activation parameters in the stack
    "mlp-slopes": ["activation=neuronwise_slope", "trainer.epochs=2"],
    # the global slope is one parameter shared by every layer: it must stay shared
    "function-global": [
        "task=function",
        "dataset=discontinuous",
        "activation=global_slope",
        "activation.base=tanh",
        "trainer.epochs=30",
    ],
    # convolutions under vmap, each run with its own augmentation stream
    "vgg-augment": [
        "model=vgg1",
        "activation=layerwise",
        "trainer.max_steps=12",
        "augmentation=custom",
        "augmentation.ops=[{op: flip}, {op: crop, padding: 1}]",
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_each_stacked_run_matches_a_separate_run_of_its_seed(case, tmp_path):
    args = CASES[case]
    combined = run(compose_config([*args, "seed=5", "trainer.stack=2"]), tmp_path / "job")
    assert combined["status"] == "completed" and len(combined["runs"]) == 2
    for seed in (5, 6):
        folder = tmp_path / "job" / f"seed={seed}"
        # as `adaptrun ... seed=<k>` would run it (the CLI puts its overrides in hparams)
        separate = run(
            compose_config([*args, f"seed={seed}"]),
            tmp_path / f"separate{seed}",
            {"seed": str(seed)},
        )
        stacked = read_metrics(folder)
        assert_same_run(stacked, separate)
        assert (folder / ".hydra" / "config.yaml").exists()
        a = events(folder).Scalars("train/loss")
        b = events(tmp_path / f"separate{seed}").Scalars("train/loss")
        assert [e.step for e in a] == [e.step for e in b]
        assert [e.value for e in a] == pytest.approx([e.value for e in b], rel=1e-3)
    # the seeds really differ: stacking did not train one run R times
    first, second = combined["runs"]
    assert first["final_train_loss"] != second["final_train_loss"]


@pytest.mark.slow
def test_stacked_runs_resume_and_skip_like_single_runs(tmp_path, monkeypatch):
    """A stack stopped by a signal resumes to exactly the metrics of an unstopped stack;
    a finished stack is skipped."""

    from adaptrun.core.interrupt import STOP

    args = ["trainer.epochs=3", "trainer.batch_size=128", "trainer.stack=2", "seed=1"]
    reference = run(compose_config(args), tmp_path / "reference")
    folder = tmp_path / "job"
    try:
        with monkeypatch.context() as patch:
            stop_at(patch, 17)  # mid second epoch (12 steps each)
            stopped = run(compose_config(args), folder)
    finally:
        STOP.signum = None  # as in a new process
    assert stopped["status"] == "interrupted"
    assert {read_metrics(folder / f"seed={s}")["status"] for s in (1, 2)} == {"interrupted"}
    resumed = run(compose_config(args), folder)
    for mine, expected in zip(resumed["runs"], reference["runs"], strict=True):
        for key in ("final_train_loss", "final_test_acc", "final_test_loss", "steps"):
            assert mine[key] == expected[key], key
    again = run(compose_config(args), folder)
    assert again["skipped"] and again["status"] == "completed"


@pytest.mark.slow
def test_report_shows_stacked_runs_as_runs(tmp_path):
    from omegaconf import OmegaConf

    sweep = tmp_path / "sw"
    for activation in ("relu", "global"):
        cfg = compose_config([f"activation={activation}", "trainer.stack=2", "trainer.epochs=2"])
        job = sweep / activation
        run(cfg, job)
        (job / ".hydra").mkdir()
        OmegaConf.save(cfg, job / ".hydra" / "config.yaml")  # as Hydra writes for the job
    report(sweep)
    table = (sweep / "report.md").read_text().split("## Results")[1].split("##")[0]
    assert "| mlp/digits | " in table
    assert table.count("(2 runs") == 2  # two seeds per activation, no container rows
    assert "missing" not in table


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ("model=preact_resnet18", "BatchNorm statistics or dropout masks would differ"),
        ("model=lenet", "model=lenet cannot be stacked as configured"),  # its dropout
        ("optimizer=molf", "updates each element on its own (adam, sgd)"),
        ("trainer.lbfgs_steps=5", "L-BFGS"),
        ("trainer.compile=true", "compiles stacks whose task's loss runs under torch.func"),
    ],
)
@pytest.mark.slow
def test_what_stacking_cannot_reproduce_is_refused(override, reason):
    args = ["trainer.stack=4", override]
    if "lbfgs" in override:
        args += ["task=function", "dataset=discontinuous"]
    if override == "optimizer=molf":
        args += ["activation=adact"]
    if override == "model=lenet":
        args += ["dataset=mnist"]  # LeNet needs 16x16 or more; nothing is loaded here
    with pytest.raises(ConfigError, match=r"trainer\.(stack|compile)") as err:
        check_config(compose_config(args))
    assert reason in str(err.value)


@pytest.mark.slow
def test_a_compiled_stack_takes_the_eager_stacks_steps(tmp_path):
    """trainer.compile=true on a stack: vmap over torch.func's grad, compiled; each run's
    numbers as the eager stack's (the backward of the summed losses), to float rounding."""
    args = [
        "experiment=jagtap_discontinuous",
        "activation=neuronwise_slope",
        "activation.slope_recovery=1",
        "trainer.stack=2",
        "trainer.epochs=30",
        "trainer.eval_every=10",
    ]
    compiled = run(compose_config([*args, "trainer.compile=true"]), tmp_path / "compiled")
    eager = run(compose_config([*args, "trainer.compile=false"]), tmp_path / "eager")
    for mine, theirs in zip(compiled["runs"], eager["runs"], strict=True):
        assert (mine["compiled"], theirs["compiled"]) == (True, False)
        assert mine["status"] == theirs["status"] == "completed"
        for key in ("final_train_loss", "final_test_rel_l2", "final_test_mse"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4), key
    assert compiled["runs"][0]["final_train_loss"] != compiled["runs"][1]["final_train_loss"]


def test_lenet_without_dropout_stacks():
    check_config(
        compose_config(["trainer.stack=2", "model=lenet", "model.dropout=0", "dataset=mnist"])
    )


def test_a_run_that_diverges_ends_alone_and_the_stack_goes_on(tmp_path):
    from torch import nn

    from adaptrun.records.board import Board
    from adaptrun.records.history import History
    from adaptrun.records.progress import Progress
    from adaptrun.records.track import Tracker
    from adaptrun.training.loop import diverged
    from adaptrun.training.stacked import StackedTracker

    def tracker(name: str) -> Tracker:
        history = History({"train_loss": "min"}, 10)
        progress = Progress(100, 10, enabled=False)
        return Tracker(
            tmp_path / name, nn.Linear(1, 1), history, Board(tmp_path / name), progress, 1, {}
        )

    stack = StackedTracker([tracker("a"), tracker("b")])
    logged = stack.train_step(1, torch.tensor([0.5, float("nan")]), torch.zeros(2), lr=0.1)
    assert logged is not None and set(logged) == {0, 1}
    assert not diverged(stack, logged)
    assert [t.alive for t in stack.trackers] == [True, False]
    logged = stack.train_step(2, torch.tensor([0.4, 0.3]), torch.zeros(2), lr=0.1)
    assert not diverged(stack, logged) and list(logged) == [0]  # the retired run is silent
    assert [stack.trackers[r].outcome("completed") for r in (0, 1)] == ["completed", "diverged"]
    assert stack.trackers[0].history.points["train_loss"][-1].value == pytest.approx(0.4)
    assert stack.trackers[1].step == 1  # nothing recorded after it diverged
    logged = stack.train_step(3, torch.tensor([float("inf"), 0.2]), torch.zeros(2), lr=0.1)
    assert diverged(stack, logged)
    for t in stack.trackers:
        t.finish("diverged")


def test_a_stacked_runs_own_error_fails_it_alone_but_a_full_disk_stops_the_stack():
    import errno
    from types import SimpleNamespace

    from adaptrun.records.track import Tracker
    from adaptrun.training.stacked import StackedTracker

    class Run(SimpleNamespace):
        fail, prefix, outcome = Tracker.fail, Tracker.prefix, Tracker.outcome

        def evaluate(self, step, metrics):
            if isinstance(self.raises, Exception):
                raise self.raises
            self.seen = metrics

    def stack(*raises):
        runs = [
            Run(alive=True, failed=False, why=None, name=f"r{k}", raises=e, seen=None)
            for k, e in enumerate(raises)
        ]
        for one in runs:
            one.window = SimpleNamespace(every=1)
        return StackedTracker(runs), runs

    records, runs = stack(None, ValueError("bad metric"), None)
    records.evaluate(5, [{"a": 1.0}, {"a": 2.0}, RuntimeError("its own evaluation")])
    assert [r.alive for r in runs] == [True, False, False]
    assert runs[1].why == "ValueError: bad metric"
    assert runs[2].why == "RuntimeError: its own evaluation"
    assert runs[0].seen == {"a": 1.0}
    assert [records.trackers[r].outcome("completed") for r in range(3)] == [
        "completed",
        "failed",
        "failed",
    ]
    records, runs = stack(None, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="No space"):
        records.evaluate(5, [{"a": 1.0}, {"a": 2.0}])


PICKY = '''
import torch
from torch import nn


class PickyTanh(nn.Module):
    """tanh, except that the run seeded 1 refuses to be evaluated."""

    def __init__(self):
        super().__init__()
        self.seed = torch.initial_seed()  # the run's seed: the runner seeds before building

    def forward(self, x):
        if not self.training and self.seed == 1:
            raise ValueError("seed 1 refuses to be evaluated")
        return torch.tanh(x)
'''


@pytest.mark.slow
def test_a_stack_with_a_run_that_failed_alone_says_so_and_exits_1(tmp_path):
    (tmp_path / "picky_act.py").write_text(PICKY)
    args = [
        "experiment=jagtap_discontinuous",
        "activation=custom",
        "activation._target_=picky_act.PickyTanh",
        "trainer.stack=2",
        "trainer.epochs=20",
        "trainer.eval_every=10",
        "hydra.run.dir=run",
    ]
    result = run_cli(args, tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "adaptrun: error: 1 of 2 stacked runs failed: ValueError: seed 1 refuses to be "
        f"evaluated; metrics.json in each run's folder under {tmp_path / 'run'}"
    )
    ok, failed = (read_metrics(tmp_path / "run" / f"seed={k}") for k in (0, 1))
    assert ok["status"] == "completed" and ok["steps"] == 20 and ok["final_test_rel_l2"] > 0
    assert failed["status"] == "failed" and failed["steps"] == 10
    assert failed["error"] == "ValueError: seed 1 refuses to be evaluated"


@pytest.mark.slow
def test_bf16_holds_for_a_compiled_run_as_for_its_stacked_twin():
    """One functional step serves both: trainer.precision=bf16 with trainer.compile=true
    computes a lone regression run in bf16 as it does the same run in a stack (it once ran
    the lone run in fp32)."""
    from adaptrun.activations import ActivationFactory
    from adaptrun.models import build_model
    from adaptrun.training.stacked import stack_models
    from adaptrun.training.steps import build_step

    cfg = compose_config(["experiment=jagtap_discontinuous", "trainer.precision=bf16"])
    checked = check_config(cfg)
    task = checked.task.build(cfg, torch.device("cpu"))
    batch = next(iter(task.train_batches(0)))

    def model():
        torch.manual_seed(0)
        factory = ActivationFactory(checked.activation.config)
        return build_model(cfg.model, task.input_shape, task.num_outputs, factory)

    def loss(precision, runs=None):
        models = [model() for _ in range(runs or 1)]
        trained = stack_models(models) if runs else models[0]
        step = build_step(trained, task, True, precision, None, True, runs, models[0])
        data = tuple(torch.stack([part] * runs) for part in batch) if runs else batch
        return step(data)[0].reshape(-1)[0].item()

    # bf16 rounding moves the loss by ~1e-4 here; a lone run and its stacked twin, both in
    # bf16, differ only in summation order (~5e-6)
    fp32, bf16, stacked = loss("fp32"), loss("bf16"), loss("bf16", runs=2)
    assert bf16 != fp32
    assert abs(bf16 - fp32) > 5 * abs(bf16 - stacked)


def test_a_stacked_task_s_loss_is_the_sum_of_each_run_s_own():
    """StackedTask follows the loop's task protocol: its loss at the stacked parameters is
    what the runs' own tasks give on their own models."""
    from adaptrun.activations import ActivationFactory
    from adaptrun.models import build_model
    from adaptrun.training.stacked import StackedTask, stack_models

    cfg = compose_config(["experiment=jagtap_discontinuous", "trainer.epochs=1"])
    checked = check_config(cfg)
    tasks = [checked.task.build(cfg, torch.device("cpu"))]
    tasks.append(tasks[0].with_seed(1))
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        factory = ActivationFactory(checked.activation.config)
        models.append(build_model(cfg.model, tasks[0].input_shape, 1, factory))
    stacked_task = StackedTask(tasks, models)
    batch = next(iter(stacked_task.train_batches(0)))
    own = [t.loss(m, next(iter(t.train_batches(0)))) for t, m in zip(tasks, models, strict=True)]
    total = stacked_task.loss(stack_models(models), batch)
    assert total.item() == pytest.approx(sum(loss.item() for loss in own), rel=1e-6)
    assert own[0].item() != pytest.approx(own[1].item(), rel=1e-3)  # two different runs
