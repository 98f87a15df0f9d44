"""The MOLF + AdAct + OWO trainer: its linear algebra, its steps, and the CLI run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import activation_config, read_metrics, run_cli, run_dirs

from adaptrun.activations import ActivationFactory
from adaptrun.config.check import check_config
from adaptrun.core.errors import ConfigError
from adaptrun.models.mlp1 import MLP1
from adaptrun.training.molf import (
    adact_step,
    molf_step,
    ols_solve,
    output_design,
    owo_newton,
    owo_step,
)


def _spd(n: int, seed: int) -> torch.Tensor:
    a = torch.randn(n + 3, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a.T @ a


def test_ols_solves_full_rank_systems():
    r = _spd(6, 0)
    c = torch.randn(6, 2, dtype=torch.float64)
    torch.testing.assert_close(ols_solve(r, c), torch.linalg.solve(r, c))


def test_ols_drops_linearly_dependent_rows_without_nan():
    basis = torch.randn(20, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    features = torch.cat([basis, basis[:, :2] * 3.0, basis[:, 1:2] - basis[:, 3:4]], 1)  # rank 4
    r = features.T @ features
    c = features.T @ torch.randn(20, 1, dtype=torch.float64)
    w = ols_solve(r, c)
    assert torch.isfinite(w).all()
    torch.testing.assert_close(r @ w, c)  # still solves the normal equations
    assert (w[4:] == 0).all()  # the dependent ones got no weight


def _problem(variant: str = "adact"):
    torch.manual_seed(0)
    model = MLP1((6,), 8, 3, ActivationFactory(activation_config(variant))).double()
    x = torch.randn(200, 6, dtype=torch.float64)
    labels = (x[:, 0] + x[:, 1] ** 2 > 1).long() + (x[:, 2] > 0.5).long()
    return model, x, F.one_hot(labels, 3).double()


def _error(model, x, targets) -> float:
    with torch.no_grad():
        return (targets - model(x)).pow(2).sum(1).mean().item()


def test_owo_returns_the_least_squares_optimum():
    model, x, targets = _problem()
    owo_step(model, x, targets)
    with torch.no_grad():
        design = output_design(model, x)
        best = torch.linalg.lstsq(design, targets).solution.T
        weights = torch.cat([model.output.bias[:, None], model.output.weight], 1)
    torch.testing.assert_close(weights, best, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("variant", ["fixed", "adact"])
def test_molf_step_lowers_the_error(variant):
    model, x, targets = _problem(variant)
    owo_step(model, x, targets)
    before = _error(model, x, targets)
    molf_step(model, x, targets)
    assert _error(model, x, targets) < before


def test_adact_step_lowers_the_error():
    model, x, targets = _problem("adact")
    owo_step(model, x, targets)
    before = _error(model, x, targets)
    adact_step(model, x, targets)
    assert _error(model, x, targets) < before


@pytest.mark.slow
def test_molf_and_adam_from_the_cli(tmp_path):
    result = run_cli(["-m", "optimizer=adam,molf", "activation=adact"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = {read_metrics(d)["hparams"]["optimizer"]: read_metrics(d) for d in run_dirs(tmp_path)}
    assert runs["molf"]["status"] == "completed" and runs["molf"]["final_test_acc"] >= 0.9
    assert runs["molf"]["steps"] == 30  # one iteration per epoch, all of the data each
    assert runs["molf"]["hparams"]["model"] == "mlp1"
    for metrics in runs.values():
        assert metrics["seconds_per_step"] == pytest.approx(
            metrics["wall_seconds"] / metrics["steps"], rel=1e-3
        )


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["optimizer=molf", "model=mlp"], "model"),
        (["optimizer=molf", "activation=neuronwise"], "activation"),
        (["optimizer=molf", "optimizer.owo=lbfgs"], "optimizer.owo"),
        (["optimizer=molf", "optimizer.l2=0"], "optimizer.l2"),
    ],
)
@pytest.mark.slow
def test_molf_refuses_what_it_cannot_train(compose_cfg, overrides, key):
    with pytest.raises(ConfigError) as info:
        check_config(compose_cfg(overrides))
    assert info.value.key == key


def test_the_ols_tolerance_reaches_the_molf_step():
    model, x, targets = _problem("fixed")
    before = model.hidden.weight.detach().clone()
    molf_step(model, x, targets, tol=1e30)  # every row counts as dependent: no step
    torch.testing.assert_close(model.hidden.weight.detach(), before)
    molf_step(model, x, targets)
    assert not torch.equal(model.hidden.weight.detach(), before)


def test_newton_owo_reaches_the_regularised_cross_entropy_optimum():
    model, x, targets = _problem("fixed")
    owo_newton(model, x, targets, steps=15, l2=1e-2)
    design = output_design(model, x).detach()
    w = (
        torch.cat([model.output.bias[:, None], model.output.weight], 1)
        .detach()
        .requires_grad_(True)
    )
    objective = F.cross_entropy(design @ w.T, targets.argmax(1)) + 0.5 * 1e-2 * w.pow(2).sum()
    (grad,) = torch.autograd.grad(objective, w)
    assert grad.abs().max() < 1e-8  # stationary: the convex objective's minimum


@pytest.mark.parametrize("variant", ["fixed", "adact"])
def test_cross_entropy_molf_and_adact_steps_lower_the_cross_entropy(variant):
    model, x, targets = _problem(variant)
    owo_newton(model, x, targets)

    def ce() -> float:
        with torch.no_grad():
            return F.cross_entropy(model(x), targets.argmax(1)).item()

    before = ce()
    molf_step(model, x, targets, loss="cross_entropy")
    after_molf = ce()
    adact_step(model, x, targets, loss="cross_entropy")
    assert after_molf < before and ce() <= after_molf * (1 + 1e-9)


@pytest.mark.slow
def test_newton_owo_run(compose_cfg, tmp_path):
    from adaptrun.runner.run import run

    cfg = compose_cfg(
        ["optimizer=molf", "activation=adact", "optimizer.owo=newton", "trainer.epochs=5"]
    )
    metrics = run(cfg, tmp_path)
    assert metrics["status"] == "completed" and metrics["final_test_acc"] >= 0.9
