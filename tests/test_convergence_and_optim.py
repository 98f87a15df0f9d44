"""Convergence figures and learning-rate schedules, against hand-computed numbers."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from adaptrun.activations import ActivationFactory, SlopeConfig, activation_parameters
from adaptrun.models import MLP
from adaptrun.records.history import Point, auc_log10, first_reach
from adaptrun.training.optim import build_optimizer, lr_factor

POINTS = [Point(10, 0.5, 1.0, 1.0), Point(20, 1.0, 2.0, 0.1), Point(30, 1.5, 3.0, 0.01)]


def test_first_reach_finds_the_first_point_at_or_past_the_target():
    assert first_reach(POINTS, 0.1, "min") == {"step": 20, "epoch": 1.0, "seconds": 2.0}
    assert first_reach(POINTS, 0.001, "min") is None
    assert first_reach(POINTS, 0.5, "max") == {"step": 10, "epoch": 0.5, "seconds": 1.0}


def test_auc_of_log10_loss_is_trapezoidal_over_epochs():
    # log10 values 0, -1, -2 at epochs 0.5, 1.0, 1.5: 0.5*(-0.5) + 0.5*(-1.5) = -1.0
    assert auc_log10(POINTS) == pytest.approx(-1.0)
    assert auc_log10(POINTS[:1]) is None
    assert auc_log10([*POINTS, Point(40, 2.0, 4.0, math.nan)]) is None


SCHED = {"schedule": "step", "milestones": [2, 5], "gamma": 0.1}


@pytest.mark.parametrize(
    ("cfg", "step", "expected"),
    [
        ({**SCHED, "schedule": "constant"}, 99, 1.0),
        (SCHED, 19, 1.0),  # epoch 1 (10 steps per epoch)
        (SCHED, 20, 0.1),  # epoch 2: first milestone
        (SCHED, 55, 0.01),  # past both milestones
        ({**SCHED, "schedule": "cosine"}, 0, 1.0),
        ({**SCHED, "schedule": "cosine"}, 50, 0.5),
        ({**SCHED, "schedule": "cosine"}, 100, 0.0),
    ],
)
def test_schedule_factors(cfg, step, expected):
    assert lr_factor(cfg, step, steps_per_epoch=10, total_steps=100) == pytest.approx(expected)


def test_slopes_are_exempt_from_weight_decay():
    model = MLP((4,), [3], 2, ActivationFactory(SlopeConfig(variant="neuronwise")))
    cfg = {"name": "sgd", "lr": 0.1, "momentum": 0.0, "nesterov": False, "weight_decay": 0.5}
    optimizer = build_optimizer(model, cfg)
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    (slope,) = activation_parameters(model)
    assert decay[id(slope)] == 0.0
    assert all(decay[id(p)] == 0.5 for p in model.parameters() if p is not slope)
    assert len(decay) == len(list(model.parameters()))
    # One SGD step with zero gradient: decayed weights shrink, the slope does not move.
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before = slope.detach().clone()
    optimizer.step()
    torch.testing.assert_close(slope.detach(), before)


def test_prelu_weight_counts_as_an_activation_parameter_without_decay():
    spec = SlopeConfig(variant="layerwise", base="prelu")
    model = MLP((4,), [3, 3], 2, ActivationFactory(spec))
    params = activation_parameters(model)
    assert sum(p.numel() for p in params) == 2 + 2  # two slopes, two PReLU weights
    cfg = {"name": "adam", "lr": 0.1, "betas": [0.9, 0.999], "weight_decay": 0.5}
    optimizer = build_optimizer(model, cfg)
    exempt = [g for g in optimizer.param_groups if g["weight_decay"] == 0.0]
    assert {id(p) for p in exempt[0]["params"]} == {id(p) for p in params}


@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "adam", "lr": 1e-2, "betas": [0.9, 0.999], "weight_decay": 1e-3},
        {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    ],
)
def test_the_fused_optimizer_takes_the_for_loop_steps(cfg):
    """Fused on a CPU: the same updates as torch's per-tensor loop, to float rounding."""
    torch.manual_seed(0)
    model = MLP((4,), [8, 8], 2, ActivationFactory(SlopeConfig(variant="neuronwise")))
    twin = MLP((4,), [8, 8], 2, ActivationFactory(SlopeConfig(variant="neuronwise")))
    twin.load_state_dict(model.state_dict())
    start = [p.detach().clone() for p in model.parameters()]
    fused = build_optimizer(model, cfg)
    assert fused.defaults["fused"] is True
    loop = build_optimizer(twin, cfg)
    loop.defaults["fused"] = False
    for group in loop.param_groups:
        group["fused"] = False
    x, y = torch.randn(16, 4), torch.randn(16, 2)
    for _ in range(20):
        for net, opt in ((model, fused), (twin, loop)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert all(not torch.equal(a, b) for a, b in zip(model.parameters(), start, strict=True))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "for-loop"])
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_a_stack_with_its_own_rates_steps_as_its_runs_would_alone(name, fused, monkeypatch):
    """Three runs stacked under one optimizer, each with its own rate and weight decay
    (run_rates.own_rates), under a schedule: after 20 steps every run's parameters are
    its separate twin's, to float rounding, for Adam and SGD, fused kernel or loop."""
    from adaptrun.training import optim
    from adaptrun.training.optim import build_schedule
    from adaptrun.training.run_rates import own_rates
    from adaptrun.training.stacked import stack_models

    monkeypatch.setattr(optim, "fusable", lambda params: fused)
    rates, decays = [1e-3, 3e-3, 1e-2], [0.0, 1e-3, 1e-2]
    base = {"name": name, "betas": [0.9, 0.999], "momentum": 0.9, "nesterov": False,
            "schedule": "cosine", "milestones": [1], "gamma": 0.1}  # fmt: skip
    torch.manual_seed(0)
    runs = [torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
            for _ in rates]  # fmt: skip
    twins = [copy.deepcopy(m) for m in runs]
    stacked = stack_models(runs)
    cfg = {**base, "lr": rates[0], "weight_decay": decays[0]}
    optimizer = build_optimizer(stacked, cfg)
    assert own_rates(optimizer, rates, decays) == rates  # each run logs its rate
    schedule = build_schedule(optimizer, cfg, 1, 20)
    alone = [build_optimizer(t, {**base, "lr": r, "weight_decay": d})
             for t, r, d in zip(twins, rates, decays, strict=True)]  # fmt: skip
    schedules = [build_schedule(o, base, 1, 20) for o in alone]
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    for _ in range(20):
        optimizer.zero_grad()
        params = dict(stacked.named_parameters())
        loss = sum(
            torch.func.functional_call(runs[0], {k: v[r] for k, v in params.items()}, (x,))
            .sub(y).pow(2).mean() for r in range(len(rates))
        )  # fmt: skip
        loss.backward()
        optimizer.step()
        schedule.step()
        for twin, opt, sched in zip(twins, alone, schedules, strict=True):
            opt.zero_grad()
            twin(x).sub(y).pow(2).mean().backward()
            opt.step()
            sched.step()
    for r, twin in enumerate(twins):
        for key, value in twin.named_parameters():
            assert torch.allclose(dict(stacked.named_parameters())[key][r], value, atol=1e-6), key
    assert not torch.allclose(twins[0][0].weight, twins[2][0].weight)  # the rates mattered
