"""Regression and physics-informed runs end to end, the compiled step and L-BFGS."""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import events, read_metrics, run_cli, run_dirs

from adaptrun.config.check import check_config
from adaptrun.core.errors import ConfigError
from adaptrun.runner.run import run
from adaptrun.training.steps import resolve_compile

SMALL_BURGERS = [
    "experiment=jagtap_burgers",
    "dataset.n_collocation=500",
    "dataset.test_nx=64",
    "dataset.test_nt=20",
]


@pytest.mark.parametrize(
    ("args", "figure", "extra_scalars", "compiled"),
    [
        (
            [
                "experiment=jagtap_discontinuous",
                "activation=layerwise_slope",
                "trainer.epochs=300",
                "trainer.figures_at=[100]",
            ],
            "figures/prediction",
            set(),
            False,  # trainer.compile=auto: 8000 steps never earn the compile back
        ),
        (
            [
                *SMALL_BURGERS,
                "activation=neuronwise_slope",
                "trainer.epochs=30",
                "trainer.eval_every=10",
                "trainer.lbfgs_steps=5",
                "trainer.figures_at=[10]",
                "trainer.compile=false",  # (compiling: test_forward_derivatives, below)
            ],
            "figures/solution",
            {"loss/residual", "loss/data"},
            False,
        ),
    ],
)
@pytest.mark.slow
def test_presets_run_from_the_cli(tmp_path, args, figure, extra_scalars, compiled):
    result = run_cli(args, cwd=tmp_path, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "outputs")
    metrics = read_metrics(run_dir)
    assert metrics["status"] == "completed"
    assert metrics["compiled"] is compiled
    assert metrics["optimizer_fused"] is True  # Adam on a CPU: torch's fused kernel
    assert (
        0 < metrics["final_test_rel_l2"] < 1.5
        and metrics["best_test_rel_l2"] <= metrics["final_test_rel_l2"]
    )
    assert set(metrics["convergence"]) == {"train_loss", "test_rel_l2"}
    assert metrics["auc_log10_train_loss"] is not None
    acc = events(run_dir)
    assert {"train/loss", "train/slope_recovery", "test/rel_l2", "test/mse"} | extra_scalars <= set(
        acc.Tags()["scalars"]
    )
    steps = [e.step for e in acc.Images(figure)]
    assert steps[0] in (10, 100) and steps[-1] == metrics["steps"]  # chosen steps and the end


def _losses(run_dir) -> list[float]:
    return [e.value for e in events(run_dir).Scalars("train/loss")]


@pytest.mark.slow
def test_compiled_burgers_step_matches_eager(compose_cfg, tmp_path):
    base = [
        *SMALL_BURGERS,
        "dataset.n_collocation=128",
        "activation=layerwise_slope",
        "model.hidden_layers=2",
        "model.width=8",
        "trainer.epochs=4",
        "trainer.log_every=1",
        "trainer.eval_every=4",
    ]
    eager = run(compose_cfg([*base, "trainer.compile=false"]), tmp_path / "eager")
    compiled = run(compose_cfg(base), tmp_path / "compiled")  # auto: forward mode compiles
    assert (compiled["compiled"], eager["compiled"]) == (True, False)
    torch.testing.assert_close(
        _losses(tmp_path / "compiled"), _losses(tmp_path / "eager"), rtol=1e-4, atol=1e-6
    )
    assert compiled["final_test_rel_l2"] == pytest.approx(eager["final_test_rel_l2"], rel=1e-4)


@pytest.mark.parametrize(
    ("overrides", "device", "expected"),
    [
        ([*SMALL_BURGERS, "activation=global_slope"], "cpu", True),  # forward derivatives
        ([*SMALL_BURGERS, "activation=global_slope"], "cuda", False),  # not measured there
        ([*SMALL_BURGERS, "activation=relu"], "cpu", False),  # autograd derivatives
        ([*SMALL_BURGERS, "task.derivatives=autograd"], "cpu", False),
        ([*SMALL_BURGERS, "trainer.compile=false"], "cpu", False),
        ([*SMALL_BURGERS, "task.derivatives=autograd", "trainer.compile=true"], "cpu", True),
        (["experiment=jagtap_discontinuous"], "cpu", False),
        (["experiment=jagtap_discontinuous", "trainer.compile=true"], "cpu", True),
        (["dataset=digits"], "cpu", False),
    ],
)
@pytest.mark.slow
def test_compile_auto_compiles_only_where_the_benchmark_shows_a_gain(
    compose_cfg, overrides, device, expected
):
    cfg = compose_cfg(overrides)
    checked = check_config(cfg)
    task = checked.task.build(cfg, torch.device("cpu"))
    functional = checked.task.capabilities.functional_loss
    assert resolve_compile(cfg.trainer.compile, task, torch.device(device), functional) is expected


@pytest.mark.slow
def test_lbfgs_phase_continues_the_run(compose_cfg, tmp_path):
    # fixed tanh: with slope recovery L-BFGS may trade MSE for a smaller S(a), as it should
    base = [
        "experiment=jagtap_discontinuous",
        "activation=tanh",
        "trainer.epochs=100",
        "trainer.log_every=1",
    ]
    adam_only = run(compose_cfg(base), tmp_path / "adam")
    both = run(compose_cfg([*base, "trainer.lbfgs_steps=30"]), tmp_path / "lbfgs")
    assert both["steps"] == 130 and both["status"] == "completed"
    losses = _losses(tmp_path / "lbfgs")
    assert losses[:100] == _losses(tmp_path / "adam")  # same Adam phase
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(losses[100:]))
    assert both["final_train_loss"] < 0.5 * adam_only["final_train_loss"]


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["task=burgers", "dataset=digits"], "dataset"),
        (["task=function"], "dataset"),  # digits is not a function dataset
        (["trainer.lbfgs_steps=5"], "trainer.lbfgs_steps"),  # classification is mini-batch
        (["experiment=jagtap_burgers", "augmentation=custom"], "augmentation"),
        (["experiment=jagtap_discontinuous", "dataset.domain=[1,0]"], "dataset.domain"),
        (["experiment=jagtap_burgers", "dataset.sampling=sobolev"], "dataset.sampling"),
        (["experiment=jagtap_burgers", "+targets.test_acc=[0.9]"], "targets.test_acc"),
    ],
)
@pytest.mark.slow
def test_mismatched_tasks_are_refused(compose_cfg, overrides, key):
    with pytest.raises(ConfigError) as info:
        check_config(compose_cfg(overrides))
    assert info.value.key == key


def test_a_preset_refuses_a_model_without_its_keys_at_compose_time(compose_cfg):
    """The Burgers preset sets model.hidden_layers: a model without that key (vgg1) is
    refused by its typed config while composing, naming the key."""
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as info:
        compose_cfg(["experiment=jagtap_burgers", "model=vgg1"])
    assert "model.hidden_layers" in str(info.value.__cause__ or info.value)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["jagtap_burgers", "jagtap_discontinuous"])
def test_presets_give_every_slope_variant_tanh_and_n_10_and_leave_other_families_alone(
    compose_cfg, preset
):
    for option in ("global", "layerwise_slope", "neuronwise"):
        act = compose_cfg([f"experiment={preset}", f"activation={option}"]).activation
        assert (act.base, act.n) == ("tanh", 10)
    assert (
        compose_cfg(
            [f"experiment={preset}", "activation=neuronwise", "activation.n=5"]
        ).activation.n
        == 5
    )
    assert compose_cfg([f"experiment={preset}", "activation=tanh"]).activation.n == 1  # fixed
    for option in ("adact", "apl", "rational"):
        check_config(compose_cfg([f"experiment={preset}", f"activation={option}"]))
