"""Whole runs composed as the CLI composes them: determinism, budgets, divergence, checks."""

from __future__ import annotations

import pytest
import torch
from conftest import events, read_metrics
from omegaconf import OmegaConf

from adaptrun.config.check import check_config
from adaptrun.core.errors import ConfigError
from adaptrun.runner.run import run

QUICK = ["trainer.epochs=2"]


def _numbers(metrics: dict) -> dict:
    """metrics.json without its wall-clock figures."""
    out = {
        k: v
        for k, v in metrics.items()
        if k not in ("wall_seconds", "seconds_per_step", "timed_in")
    }
    out["convergence"] = {
        name: {t: (w and {k: v for k, v in w.items() if k != "seconds"}) for t, w in d.items()}
        for name, d in metrics["convergence"].items()
    }
    return out


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["neuronwise_slope", "global_slope"])
def test_same_seed_gives_identical_metrics(compose_cfg, tmp_path, activation):
    cfg = compose_cfg([*QUICK, f"activation={activation}", "seed=7"])
    first = run(cfg, tmp_path / "a")
    second = run(cfg, tmp_path / "b")
    assert _numbers(first) == _numbers(second)
    assert first["threads_why"].startswith(("auto: ", "trainer.threads as given"))
    assert _numbers(read_metrics(tmp_path / "a")) == _numbers(first)
    other = run(compose_cfg([*QUICK, f"activation={activation}", "seed=8"]), tmp_path / "c")
    assert other["final_train_loss"] != first["final_train_loss"]


@pytest.mark.slow
def test_vgg2_with_layerwise_slope_recovery_trains(compose_cfg, tmp_path):
    cfg = compose_cfg(["model=vgg2", "activation=layerwise_slope", "trainer.epochs=3"])
    metrics = run(cfg, tmp_path)
    assert metrics["status"] == "completed"
    assert metrics["params"]["activation"] == 5  # 4 convolutions + 1 dense layer
    assert metrics["final_test_acc"] > 0.5


def test_max_steps_and_eval_every(compose_cfg, tmp_path):
    cfg = compose_cfg(["trainer.max_steps=30", "trainer.eval_every=10", "trainer.log_every=5"])
    metrics = run(cfg, tmp_path)
    assert metrics["steps"] == 30
    assert metrics["epochs"] == pytest.approx(30 / 23, abs=1e-4)
    # test at steps 10, 20, (epoch end) 23, 30
    acc = events(tmp_path)
    assert [e.step for e in acc.Scalars("test/acc")] == [10, 20, 23, 30]
    assert [e.step for e in acc.Scalars("train/loss")] == [5, 10, 15, 20, 23, 25, 30]
    # max_steps cut the 20 configured epochs short: the summary says how many were trained
    assert acc.Scalars("zz_summary/epochs")[-1].value == pytest.approx(30 / 23, rel=1e-4)
    assert metrics["hparams"]["trainer.epochs"] == 20


def test_non_finite_loss_ends_the_run_as_diverged(compose_cfg, tmp_path):
    cfg = compose_cfg(["optimizer=sgd", "optimizer.lr=1e30", "trainer.log_every=1"])
    metrics = run(cfg, tmp_path)
    assert metrics["status"] == "diverged"
    assert metrics["steps"] < 23 * 20
    assert read_metrics(tmp_path)["status"] == "diverged"


def test_slope_recovery_term_is_logged_and_slopes_move(compose_cfg, tmp_path):
    cfg = compose_cfg(
        [*QUICK, "activation=layerwise_slope", "activation.base=tanh", "activation.n=10"]
    )
    run(cfg, tmp_path)
    acc = events(tmp_path)
    terms = [e.value for e in acc.Scalars("train/slope_recovery")]
    assert 0 < terms[-1] < terms[0] <= 1 / 2.718281828**0.1 + 1e-6  # S(a) at a = 1/n is e^-0.1
    slopes = [e.value for e in acc.Scalars("slopes/net.2")]
    assert slopes[-1] > 1.0  # the recovery term pushes slopes up


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["activation.n=0"], "activation.n"),
        (["activation=neuronwise", "activation.granularity=pixel"], "activation.granularity"),
        (["activation=layerwise", "activation.normalization=median"], "activation.normalization"),
        (["activation.slope_recovery=-1"], "activation.slope_recovery"),
        (["trainer.epochs=0"], "trainer.epochs"),
        (["trainer.max_steps=-3"], "trainer.max_steps"),
        (["trainer.precision=fp8"], "trainer.precision"),
        (["trainer.device=tpu"], "trainer.device"),
        (["trainer.threads=0"], "trainer.threads"),
        (["optimizer=sgd", "optimizer.momentum=1.5"], "optimizer.momentum"),
        (["optimizer.schedule=linear"], "optimizer.schedule"),
        (["optimizer.milestones=[5,2]"], "optimizer.milestones"),
        (["model.width=0"], "model.width"),
        (["model=vgg3", "dataset.shape=[1,4,4]"], "model"),
        (["+targets.test_accuracy=[0.9]"], "targets.test_accuracy"),
        (["seed=abc"], "seed"),
        # not a number at all: nan and infinity are refused like any impossible value
        (["optimizer.lr=inf"], "optimizer.lr"),
        (["activation=global", "activation.n=inf"], "activation.n"),
        (["activation.n=nan"], "activation.n"),
        (["optimizer.betas=[0.9,inf]"], "optimizer.betas"),
        (["targets.test_acc=[-inf]"], "targets.test_acc"),
        (["experiment=jagtap_burgers", "task.weight_data=inf"], "task.weight_data"),
    ],
)
@pytest.mark.slow
def test_config_check_names_the_bad_key(compose_cfg, overrides, key):
    with pytest.raises(ConfigError) as info:
        check_config(compose_cfg(overrides))
    assert info.value.key == key


@pytest.mark.slow
def test_every_shipped_option_passes_the_config_check(compose_cfg):
    from adaptrun.config.options import config_dir
    from adaptrun.data import DATASETS
    from adaptrun.tasks import TASKS

    datasets_for = {
        t.name: [d.name for d in DATASETS.values() if d.kind == t.takes] for t in TASKS.values()
    }
    task_of = {d: t for t, datasets in datasets_for.items() for d in datasets}
    groups = (
        "activation",
        "model",
        "optimizer",
        "dataset",
        "augmentation",
        "task",
        "experiment",
        "protocol",
    )
    for group in groups:
        for option in sorted((config_dir() / group).glob("*.yaml")):
            context: list[str] = []
            if group == "model" or option.stem == "jagtap_benchmark":
                context = ["dataset=cifar10"]
            elif group == "dataset":
                context = [f"task={task_of[option.stem]}"]
            elif group == "task":
                context = [f"dataset={datasets_for[option.stem][-1]}"]
            elif group == "activation" and option.stem == "custom":
                context = ["activation._target_=torch.nn.SiLU"]
            cfg = compose_cfg([*context, f"{group}={option.stem}"])
            check_config(cfg)
            if group in ("activation", "model", "dataset", "task") and option.stem != "custom":
                # its yaml extends its entry's structured config: typed while composing
                assert OmegaConf.get_type(cfg[group]) is not dict, (group, option.stem)


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU, impl=triton is valid")
def test_triton_impl_without_a_gpu_is_refused_with_the_alternatives(compose_cfg, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # the kernel tests set it
    with pytest.raises(ConfigError, match=r"activation\.impl: triton needs a CUDA GPU") as err:
        check_config(compose_cfg(["activation=neuronwise", "activation.impl=triton"]))
    assert "use auto" in str(err.value) and "or torch" in str(err.value)
    check_config(compose_cfg(["activation=neuronwise", "activation.impl=torch"]))


def test_trainer_threads_auto_divides_the_cores_among_concurrent_jobs(monkeypatch):
    from adaptrun.runner import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 16)
    assert threads.resolve_threads("auto") == 16
    assert threads.resolve_threads("auto", 4) == 4
    assert threads.resolve_threads("auto", 32) == 1
    assert threads.resolve_threads("auto", -1) == 1  # joblib's n_jobs=-1: one job per core
    assert threads.resolve_threads(3, 4) == 3
    assert threads.concurrent_jobs({"n_jobs": 4}) == 4
    assert threads.concurrent_jobs({"_target_": "hydra._internal.BasicLauncher"}) == 1


def test_trainer_threads_auto_takes_the_free_cores_and_then_the_faster_count(monkeypatch):
    """auto never takes cores other work keeps busy, and of what is free it measures one
    thread against all: a small step that gains nothing from more threads gets one."""
    import types

    from adaptrun.runner import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    # A clock only the probe moves: a busy test machine cannot turn a 10% gap into a tie.
    clock = [0.0]
    monkeypatch.setattr(threads, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    calls = []

    def step(one: float, many: float):
        def probe():
            calls.append(torch.get_num_threads())
            clock[0] += one if torch.get_num_threads() == 1 else many

        return probe

    idle = lambda: 0.0  # noqa: E731
    scales = threads.choose_threads("auto", 1, step(0.004, 0.001), busy=idle)
    assert scales.count == 4 and set(calls) == {1, 4}
    assert "a step took 4" in scales.why and "ms on 1 thread" in scales.why
    small = threads.choose_threads("auto", 1, step(0.001, 0.002), busy=idle)
    assert small.count == 1 and small.why.endswith("ms on 4")
    tie = threads.choose_threads("auto", 1, step(0.002, 0.0019), busy=idle)
    assert tie.count == 1  # within 10%: one thread leaves the others to other work
    calls.clear()
    crowded = threads.choose_threads("auto", 1, step(0.004, 0.001), busy=lambda: 3.2)
    assert crowded.count == 1 and not calls  # one core free: nothing to measure
    assert "3.2 busy with other work, 1 free" in crowded.why
    half = threads.choose_threads("auto", 1, step(0.004, 0.001), busy=lambda: 1.9)
    assert half.count == 2  # round(4 - 1.9) cores free, and they pay
    shared = threads.choose_threads("auto", 2, None, busy=idle)
    assert shared.count == 2 and "(2 concurrent jobs)" in shared.why
    assert threads.choose_threads(3, 4).why == "trainer.threads as given"


def test_the_cores_other_work_keeps_busy_are_read_from_proc_stat(monkeypatch, tmp_path):
    """The busy share per CPU of this process's affinity, from two readings of /proc/stat
    (fixed readings here: a measured load is whatever the machine runs beside the test)."""
    from adaptrun.runner import threads

    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  9 9 9 9 9 9 9 9\ncpu0 10 0 10 70 10 0 0 0\ncpu1 0 0 0 100 0 0 0 0\n"
        "cpu2 5 0 5 90 0 0 0 0\nintr 1 2 3\n"
    )
    later = "cpu  9 9 9 9 9 9 9 9\ncpu0 40 0 30 90 20 0 0 0\ncpu1 0 0 0 200 0 0 0 0\n"
    later += "cpu2 105 0 5 90 0 0 0 0\nintr 1 2 3\n"
    monkeypatch.setattr(threads, "_cpus", lambda: {0, 1})  # cpu2 is another process's
    monkeypatch.setattr(threads.time, "sleep", lambda _: stat.write_text(later))
    # cpu0: 80 jiffies, 30 of them idle or iowait -> 0.625 busy; cpu1: all idle -> 0
    assert threads.busy_cores(0.1, stat) == pytest.approx(0.625)
    monkeypatch.undo()
    if threads.PROC_STAT.exists():  # the real file reads as a share of this process's cores
        real = threads.busy_cores(0.05)
        assert real is not None and 0.0 <= real <= threads.available_cores()


def test_a_dataset_of_another_task_names_the_task_it_goes_with(compose_cfg):
    with pytest.raises(ConfigError) as err:
        check_config(compose_cfg(["dataset=burgers"]))
    message = str(err.value)
    assert message.startswith("dataset: task classification cannot use dataset burgers")
    assert "dataset burgers goes with task=burgers" in message and "experiment=" in message


def test_bench_match_params_trains_the_widest_model_within_the_fixed_networks_parameters(
    tmp_path, compose_cfg
):
    """bench.match=params: neuron-wise slopes add 64 + 64 parameters to the 64-64 MLP
    (8970 weights): width 63 (8893 in all) is the widest within 8970; the run is exactly
    a run of model.width=63 (its draws, its numbers) and records the width it trained."""
    args = ["activation=neuronwise_slope", "trainer.epochs=1"]
    matched = run(compose_cfg([*args, "bench.match=params"]), tmp_path / "matched")
    direct = run(compose_cfg([*args, "model.width=63"]), tmp_path / "direct")
    assert matched["params"] == direct["params"] == {"total": 8893, "activation": 126}
    assert matched["final_train_loss"] == direct["final_train_loss"]
    assert matched["final_test_acc"] == direct["final_test_acc"]
    assert matched["hparams"]["model.width"] == 63
    fixed = run(compose_cfg(["trainer.max_steps=2", "bench.match=params"]), tmp_path / "fixed")
    assert fixed["params"]["total"] == 8970  # nothing to pay for: the configured width
    with pytest.raises(ConfigError) as refused:
        check_config(compose_cfg(["model=vgg1", "bench.match=params"]))
    assert str(refused.value) == (
        "bench.match: params sets the model's width, and model=vgg has none that one key "
        "sets; models with one: mlp, mlp1"
    )
    with pytest.raises(ConfigError) as unknown:
        check_config(compose_cfg(["bench.match=flops"]))
    assert str(unknown.value).startswith("bench.match: unknown match 'flops'; valid: null")
