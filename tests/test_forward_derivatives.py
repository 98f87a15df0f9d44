"""Forward-mode input derivatives (task.derivatives=forward): the same residual, loss and
parameter gradients as nested autograd, to float64 rounding, for every smooth base and
every slope variant; chosen by auto where they apply, refused with a reason where not."""

from __future__ import annotations

import pytest
import torch
from conftest import activation_config, compose_config

from adaptrun.activations import ActivationFactory, model_penalty
from adaptrun.config.check import check_config
from adaptrun.core.errors import ConfigError
from adaptrun.models import MLP
from adaptrun.runner.run import run
from adaptrun.tasks.burgers import BurgersTask, residual, residual_forward

BASES = ["tanh", "sigmoid", "sin", "gelu", "silu"]
VARIANTS = [
    ("fixed", {}),
    ("global", {}),
    ("layerwise", {"slope_recovery": 1.0}),
    ("neuronwise", {}),
    ("neuronwise", {"slope_recovery": 1.0}),
]
NU = 0.01 / torch.pi


def _network(base: str, variant: str, extra: dict) -> MLP:
    torch.manual_seed(0)
    fields = {"base": base, **extra} if variant == "fixed" else {"base": base, "n": 5, **extra}
    model = MLP((2,), [7, 6, 5], 1, ActivationFactory(activation_config(variant, **fields)))
    model = model.double()
    with torch.no_grad():  # slopes away from 1/n: every term of the derivative matters
        for name, p in model.named_parameters():
            if name.endswith(".a"):
                p.add_(torch.rand_like(p) * 0.2)
    return model


def _loss_and_grads(model: MLP, res: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    loss = res.pow(2).mean() + model_penalty(model)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return loss.detach(), [g.detach() for g in grads]


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize(("variant", "extra"), VARIANTS, ids=lambda v: str(v))
def test_forward_derivatives_equal_autograd_in_float64(base, variant, extra):
    model = _network(base, variant, extra)
    xt = torch.rand(64, 2, dtype=torch.float64) * torch.tensor([2.0, 1.0]) - torch.tensor([1, 0])
    reference = residual(BurgersTask.u(model), xt, NU)
    forward = residual_forward(model, xt, NU)
    torch.testing.assert_close(forward, reference.detach(), rtol=1e-10, atol=1e-12)
    loss_ref, grads_ref = _loss_and_grads(model, residual(BurgersTask.u(model), xt, NU))
    loss_fwd, grads_fwd = _loss_and_grads(model, residual_forward(model, xt, NU))
    torch.testing.assert_close(loss_fwd, loss_ref, rtol=1e-10, atol=0)
    for fwd, ref in zip(grads_fwd, grads_ref, strict=True):
        torch.testing.assert_close(fwd, ref, rtol=1e-10, atol=1e-12)


BURGERS = ["experiment=jagtap_burgers", "dataset.n_collocation=500", "dataset.n_boundary=100"]


@pytest.mark.parametrize(
    ("overrides", "mode"),
    [
        (["activation=neuronwise_slope"], "forward"),
        (["activation=tanh"], "forward"),
        (["activation=layerwise", "activation.base=relu"], "autograd"),  # no f'' at the kink
        (["activation=adact"], "autograd"),
        (["activation=neuronwise", "task.derivatives=autograd"], "autograd"),
    ],
)
@pytest.mark.slow
def test_auto_takes_forward_where_it_applies(overrides, mode):
    from adaptrun.tasks.burgers import resolve_derivatives

    assert resolve_derivatives(compose_config([*BURGERS, *overrides])) == mode


def test_forward_where_it_cannot_apply_is_refused_with_the_reason():
    cfg = compose_config([*BURGERS, "activation=relu", "task.derivatives=forward"])
    with pytest.raises(ConfigError, match="no closed-form second derivative") as info:
        check_config(cfg)
    assert info.value.key == "task.derivatives"


@pytest.mark.slow
def test_a_burgers_run_is_the_same_either_way_and_records_which(tmp_path):
    args = [
        *BURGERS,
        "activation=neuronwise_slope",
        "trainer.epochs=60",
        "trainer.eval_every=30",
        "trainer.compile=false",  # the compiled step: test_pinn_runs
    ]
    forward = run(compose_config(args), tmp_path / "forward")
    autograd = run(compose_config([*args, "task.derivatives=autograd"]), tmp_path / "autograd")
    assert (forward["derivatives"], autograd["derivatives"]) == ("forward", "autograd")
    assert forward["compiled"] is autograd["compiled"] is False
    for key in ("final_train_loss", "final_test_rel_l2", "final_loss_residual"):
        assert forward[key] == pytest.approx(autograd[key], rel=1e-4), key


@pytest.mark.slow
def test_stacked_burgers_runs_carry_derivatives_forward_under_vmap(tmp_path):
    args = [*BURGERS, "activation=layerwise_slope", "trainer.epochs=20"]
    combined = run(compose_config([*args, "seed=0", "trainer.stack=2"]), tmp_path / "stack")
    assert combined["status"] == "completed"
    separate = run(compose_config([*args, "seed=1"]), tmp_path / "one")
    stacked = combined["runs"][1]
    assert stacked["derivatives"] == "forward"
    assert stacked["final_train_loss"] == pytest.approx(separate["final_train_loss"], rel=1e-3)
