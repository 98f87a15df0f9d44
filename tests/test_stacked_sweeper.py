"""hydra/sweeper=stacked: the multirun's combinations, those that differ only in
stackable keys trained as one stacked job, each run recorded as its unstacked twin."""

from __future__ import annotations

import pytest
from conftest import assert_same_run, compose_config, events, read_metrics, run_cli, stop_at
from omegaconf import OmegaConf

from adaptrun.config.plan import plan, run_folder, split_ended
from adaptrun.core.interrupt import STOP
from adaptrun.runner.run import run

GRID = [
    "experiment=jagtap_discontinuous",
    "activation=layerwise_slope,tanh",
    "slope_defaults.base=relu",  # the slope option's base; fixed tanh keeps its own
    "activation.n=1,1e20",  # the second n sends relu's outputs to inf: that run diverges
    "seed=0,1",
    "trainer.epochs=40",
    "trainer.eval_every=20",
]


def combos(args: list[str]) -> list[list[str]]:
    from adaptrun.sweep.jobs import expand

    return expand(args)


def one_job(jobs: list[list[str]]) -> list[str]:
    """The overrides of the one stacked job these combinations plan to, less Hydra's."""
    (stack,) = plan(jobs, 8)
    return [o for o in stack.overrides(jobs, []) if not o.startswith("hydra.")]


def stopped_and_resumed(job: list[str], tmp_path, monkeypatch, at: int) -> tuple[dict, dict]:
    """The job's metrics run through unstopped, and run stopped at step ``at`` (a stop
    signal, as a scheduler sends) then run again in its folder, which resumes it."""
    reference = run(compose_config(job), tmp_path / "reference" / "job")
    folder = tmp_path / "sweep" / "job"
    try:
        with monkeypatch.context() as patch:
            stop_at(patch, at)
            stopped = run(compose_config(job), folder)
    finally:
        STOP.signum = None  # as in a new process
    assert stopped["status"] == "interrupted"
    return reference, run(compose_config(job), folder)


def test_plan_stacks_what_differs_only_in_stackable_keys():
    jobs = combos(
        ["activation=tanh,global_slope", "activation.n=1,5", "seed=0,1,2", "optimizer.lr=0.1"]
    )
    stacks = plan(jobs, max_stack=4)
    assert [s.nums for s in stacks] == [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 11]]
    assert stacks[0].common == ["activation=tanh"]  # adam and sgd take the rate per run
    assert stacks[0].own[3] == ["activation.n=5", "seed=0", "optimizer.lr=0.1"]
    # a recovery term present or absent is structure: zero and nonzero weights stack apart
    recovery = plan(combos(["activation.slope_recovery=0,0.5,1", "seed=0,1"]), 8)
    assert [s.nums for s in recovery] == [[0, 1], [2, 3, 4, 5]]
    # a lone combination is launched as the basic sweeper launches it, in the folder and
    # under the number the basic sweeper gives it: the leftover of seeds chunked by
    # max_stack is job 1 of the batch but run 2 of the sweep
    seeds = combos(["activation=relu", "seed=0,1,2"])
    lone = plan(seeds, 2)[1]
    assert lone.overrides(seeds, []) == [
        "activation=relu",
        "seed=2",
        "hydra.sweep.subdir='activation=relu,seed=2'",
        "+hydra.job.env_set.ADAPTRUN_RUN_NUM=2",
    ]
    # a stack whose runs partly ended already: those alone (the runner skips them), the rest
    # stacked; a stack all or none of whose runs ended stays as it is
    split = split_ended(stacks, lambda num: num in (0, 2, 4, 5))
    assert [s.nums for s in split] == [[0], [2], [1, 3], [4, 5], [6, 7, 8, 9], [10, 11]]
    assert split[2].own == [stacks[0].own[1], stacks[0].own[3]]
    line = stacks[1].overrides(jobs, ["optimizer.lr"])
    assert line[0:1] == stacks[1].common and line[-1] == "hydra.sweep.subdir=stack-4x2"
    assert line[1] == (
        "+adaptrun_stack=[[4,'activation.n=5,activation=tanh,seed=1','activation.n=5',"
        "'seed=1','optimizer.lr=0.1'],[5,'activation.n=5,activation=tanh,seed=2',"
        "'activation.n=5','seed=2','optimizer.lr=0.1']]"
    )
    # a learning-rate grid stacks: the runs differ only in a key the optimizer takes per run
    (rates,) = plan(combos(["optimizer.lr=1e-3,3e-3", "optimizer.weight_decay=0,1e-4"]), 8)
    assert rates.nums == [0, 1, 2, 3] and rates.common == []
    assert run_folder(jobs[4], 4, []) == "activation.n=5,activation=tanh,optimizer.lr=0.1,seed=1"


@pytest.mark.slow
def test_a_stacked_sweep_records_each_run_as_its_unstacked_twin(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/sweeper=stacked", *GRID, f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sweep of 8 runs: 6 completed, 2 diverged" in result.stderr  # slope n=1e20, relu
    assert sorted(p.name for p in sweep.glob("stack-*")) == ["stack-0x4", "stack-4x4"]
    log = "".join(p.read_text() for p in sweep.glob("stack-*/*.log"))
    for num, combo in enumerate(combos(GRID)):
        folder = sweep / run_folder(combo, num, [])
        # each run's lines in the job's log start with its name: they are told apart
        if mine_ended := "activation.n=1e+20" in combo and "activation=layerwise_slope" in combo:
            assert f"{folder.name}: run diverged:" in log
        else:
            assert f"{folder.name}: step " in log
        mine = read_metrics(folder)
        assert mine["stacked_runs"] == 4  # it says it shared its step with three others
        assert sorted(OmegaConf.load(folder / ".hydra" / "overrides.yaml")) == sorted(combo)
        assert OmegaConf.load(folder / ".hydra" / "hydra.yaml").hydra.job.num == num
        if mine_ended:
            assert mine["status"] == "diverged"  # ended alone: the stack went on
            continue
        given = {o.split("=", 1)[0]: o.split("=", 1)[1] for o in combo}
        twin = run(compose_config(combo), tmp_path / f"twin{num}", given)
        assert_same_run(mine, twin)
        ours, theirs = events(folder), events(tmp_path / f"twin{num}")
        a, b = (e.Scalars("train/loss") for e in (ours, theirs))
        assert [e.step for e in a] == [e.step for e in b]
        assert [e.value for e in a] == pytest.approx([e.value for e in b], rel=1e-4)
    # tanh is fixed (n is ignored): its n=1e20 runs complete like the n=1 ones
    assert read_metrics(sweep / run_folder(combos(GRID)[7], 7, []))["status"] == "completed"
    # Run again with a third seed: the plan would stack each finished run with the new
    # ones; the finished runs are skipped alone and only the new seed trains, two a stack.
    written = {p: p.stat().st_mtime_ns for p in sweep.glob("*/metrics.json")}
    more = [o if o != "seed=0,1" else "seed=0,1,2" for o in args]
    again = run_cli(more, tmp_path, timeout=240)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "sweep of 12 runs: 3 completed, 1 diverged, 8 skipped" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in written} == written  # not one rewritten
    assert sorted(p.name for p in sweep.glob("stack-*")) == [
        "stack-0x4", "stack-2x2", "stack-4x4", "stack-8x2"
    ]  # fmt: skip
    new = sorted(p.parent.name for p in sweep.glob("*/metrics.json") if p not in written)
    assert len(new) == 4 and all(read_metrics(sweep / n)["stacked_runs"] == 2 for n in new)
    assert all("seed=2" in OmegaConf.load(sweep / n / ".hydra" / "overrides.yaml") for n in new)


@pytest.mark.slow
def test_a_stopped_stacked_job_resumes_to_the_metrics_of_an_unstopped_one(tmp_path, monkeypatch):

    jobs = combos(["activation=neuronwise_slope", "activation.n=1,5", "trainer.epochs=3"])
    job = one_job(jobs)
    reference, resumed = stopped_and_resumed(job, tmp_path, monkeypatch, 17)  # mid 2nd epoch
    for mine, expected in zip(resumed["runs"], reference["runs"], strict=True):
        for key in ("final_train_loss", "final_test_acc", "steps"):
            assert mine[key] == expected[key], key
    assert run(compose_config(job), tmp_path / "sweep" / "job")["skipped"]
    for num, combo in enumerate(jobs):  # each run in the folder the basic sweeper gives it
        metrics = read_metrics(tmp_path / "sweep" / run_folder(combo, num, []))
        assert metrics["hparams"]["activation.n"] == (1.0, 5.0)[num]


@pytest.mark.slow
def test_runs_that_raise_alone_fail_alone_and_their_stack_mates_go_on(tmp_path, monkeypatch):
    """Two injected failures of a run's own: n = 10 indexes past a table in the stacked
    step (vmap raises for the whole batch); n = 5's evaluation raises at step 20. Both fail
    with their own error at their own step, through a stop and resume; the n = 1 runs end
    as their unstacked twins."""
    import torch

    from adaptrun.activations.slope import SlopeActivation
    from adaptrun.tasks.function import FunctionTask

    forward, evaluate = SlopeActivation.forward, FunctionTask.evaluate

    def table_lookup(self, x):
        return forward(self, x) * torch.ones(8)[self.scale.long()]

    def picky(self, model):
        if any(float(m.scale) == 5 for m in model.modules() if isinstance(m, SlopeActivation)):
            raise ValueError("no metrics for n = 5")
        return evaluate(self, model)

    monkeypatch.setattr(SlopeActivation, "forward", table_lookup)
    monkeypatch.setattr(FunctionTask, "evaluate", picky)
    grid = [
        "experiment=jagtap_discontinuous",
        "activation=layerwise_slope",
        "activation.n=1,5,10",
        "seed=0,1",
        "trainer.epochs=40",
        "trainer.eval_every=20",
    ]
    jobs = combos(grid)
    job = one_job(jobs)
    given = dict(o.split("=", 1) for o in job)
    try:  # stopped after both failures and resumed: the failed runs stay failed, with why
        with monkeypatch.context() as patch:
            stop_at(patch, 30)
            stopped = run(compose_config(job), tmp_path / "sweep" / "job", given)
    finally:
        STOP.signum = None
    assert stopped["status"] == "interrupted"
    result = run(compose_config(job), tmp_path / "sweep" / "job", given)
    assert result["status"] == "failed"
    for num, combo in enumerate(jobs):
        mine = read_metrics(tmp_path / "sweep" / run_folder(combo, num, []))
        assert result["runs"][num]["status"] == mine["status"]
        if "activation.n=10" in combo:
            assert mine["status"] == "failed" and mine["steps"] == 0
            assert mine["error"].startswith("IndexError: index 10 is out of bounds")
            assert mine["error"].endswith("(in the stacked step, alone)")
            continue
        if "activation.n=5" in combo:
            assert mine["status"] == "failed" and mine["steps"] == 20
            assert mine["error"] == "ValueError: no metrics for n = 5"
            assert mine["final_test_rel_l2"] is None and mine["final_train_loss"] > 0
            continue
        alone = dict(o.split("=", 1) for o in combo)
        twin = run(compose_config(combo), tmp_path / f"twin{num}", alone)
        assert mine["status"] == twin["status"] == "completed"
        assert_same_run(mine, twin)
        ours, theirs = (
            events(tmp_path / "sweep" / run_folder(combo, num, [])),
            events(tmp_path / f"twin{num}"),
        )
        a, b = (e.Scalars("train/loss") for e in (ours, theirs))
        assert [e.value for e in a] == pytest.approx([e.value for e in b], rel=1e-4)
    # an error no run raises alone (.item() is refused under vmap) is the stack's: every run
    # records it
    monkeypatch.setattr(SlopeActivation, "forward", lambda self, x: x * self.scale.item())
    whole = tmp_path / "whole"
    stacked = [*grid[:2], "trainer.epochs=3", "trainer.stack=2"]
    with pytest.raises(RuntimeError, match="item"):
        run(compose_config(stacked), whole)
    for seed in (0, 1):
        mine = read_metrics(whole / f"seed={seed}")
        assert mine["status"] == "failed" and ".item()" in mine["error"]


@pytest.mark.slow
def test_runs_that_cannot_stack_run_one_after_another_in_their_job(tmp_path):
    sweep = tmp_path / "sweep"
    grid = ["experiment=jagtap_discontinuous", "trainer.lbfgs_steps=2", "seed=0,1"]
    args = ["-m", "hydra/sweeper=stacked", *grid, "trainer.epochs=5", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sweep of 2 runs: 2 completed" in result.stderr
    assert "cannot be stacked (trainer.stack: L-BFGS" in result.stdout + result.stderr
    for num, combo in enumerate(combos([*grid, "trainer.epochs=5"])):
        metrics = read_metrics(sweep / run_folder(combo, num, []))
        assert metrics["status"] == "completed" and metrics["steps"] == 5 + 2


@pytest.mark.slow
def test_a_bad_max_stack_is_one_line_and_nothing_written(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/sweeper=stacked", "hydra.sweeper.max_stack=0", "seed=0,1"]
    result = run_cli([*args, f"hydra.sweep.dir={sweep}"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "adaptrun: error: hydra.sweeper.max_stack: must be an integer >= 1 (got 0)"
    )
    assert not sweep.exists()


@pytest.mark.slow
def test_stacked_runs_with_their_own_rates_equal_their_unstacked_twins(tmp_path):
    """A learning-rate and weight-decay grid trained as one stack through the runner:
    each run's metrics and TensorBoard series (its loss, its own rate, its test error) are
    those of its separate twin (SGD and the per-tensor loop: test_convergence_and_optim)."""
    grid = [
        "experiment=jagtap_discontinuous", "activation=layerwise_slope",
        "optimizer.lr=1e-3,3e-3", "optimizer.weight_decay=0,1e-3", "trainer.epochs=40",
        "trainer.eval_every=20",
    ]  # fmt: skip
    jobs = combos(grid)
    job = one_job(jobs)
    line = {o.split("=", 1)[0]: o.split("=", 1)[1] for o in job}  # as the CLI passes them
    stacked = run(compose_config(job), tmp_path / "sweep" / "job", line)
    assert stacked["status"] == "completed" and len(stacked["runs"]) == 4
    finals = set()
    for num, combo in enumerate(jobs):
        folder = tmp_path / "sweep" / run_folder(combo, num, [])
        mine = read_metrics(folder)
        given = {o.split("=", 1)[0]: o.split("=", 1)[1] for o in combo}
        twin = run(compose_config(combo), tmp_path / f"twin{num}", given)
        assert_same_run(mine, twin)
        assert mine["hparams"]["optimizer.lr"] == twin["hparams"]["optimizer.lr"]
        ours, theirs = events(folder), events(tmp_path / f"twin{num}")
        for tag in ("train/loss", "train/lr", "test/rel_l2"):
            a, b = ours.Scalars(tag), theirs.Scalars(tag)
            assert [e.step for e in a] == [e.step for e in b], tag
            assert [e.value for e in a] == pytest.approx([e.value for e in b], rel=1e-4), tag
        finals.add(mine["final_train_loss"])
    assert len(finals) == 4  # every rate and decay really made its own run


def test_a_stack_of_rates_is_refused_for_an_optimizer_that_cannot_take_them(monkeypatch):
    import dataclasses

    from adaptrun.config.check import check_config
    from adaptrun.core.errors import ConfigError
    from adaptrun.training.optim import OPTIMIZERS, OptimizerCapabilities

    plain = dataclasses.replace(OPTIMIZERS["adam"], capabilities=OptimizerCapabilities())
    monkeypatch.setitem(OPTIMIZERS._entries, "adam", plain)
    jobs = combos(["optimizer.lr=1e-3,3e-3"])
    job = one_job(jobs)
    with pytest.raises(ConfigError) as refused:
        check_config(compose_config(job))
    assert str(refused.value).startswith(
        "optimizer.lr: optimizer=adam cannot give the runs of one stack their own rate"
    )


@pytest.mark.slow
def test_a_stopped_stack_of_rates_resumes_to_the_metrics_of_an_unstopped_one(tmp_path, monkeypatch):
    """Per-run rates live in the optimizer's groups and its hooks, not in the checkpoint's
    blind spots: a stack stopped mid-run and resumed ends exactly where an unstopped one
    does (the relative rates, the schedule's base and each run's decay restored)."""
    job = one_job(combos(["optimizer.lr=1e-3,4e-3", "optimizer.weight_decay=0,1e-3",
                          "trainer.epochs=3", "optimizer.schedule=cosine"]))  # fmt: skip
    # stopped mid second epoch (23 steps an epoch)
    reference, resumed = stopped_and_resumed(job, tmp_path, monkeypatch, 30)
    assert len({r["final_train_loss"] for r in resumed["runs"]}) == 4
    for mine, expected in zip(resumed["runs"], reference["runs"], strict=True):
        for key in ("final_train_loss", "final_test_acc", "steps"):
            assert mine[key] == expected[key], key
