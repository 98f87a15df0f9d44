"""Point sets and seeds: every sampling method fills the domain as documented, the
quasi-random sets are deterministic and low-discrepancy, a run's seed redraws the points
(the same way for every column), the shock metric measures where the shock is, and the
DeepXDE-matching loss options compute what they say."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config
from scipy.stats import qmc
from torch import nn

from adaptrun.activations import ActivationFactory
from adaptrun.models import build_model
from adaptrun.runner.assemble import seed_everything
from adaptrun.tasks import TASKS
from adaptrun.tasks.burgers import BurgersTask, residual, shock_position
from adaptrun.tasks.burgers_exact import exact_u
from adaptrun.tasks.sampling import SAMPLINGS, sample_box

CPU = torch.device("cpu")
SMALL = ["dataset.n_collocation=300", "dataset.test_nx=32", "dataset.test_nt=10"]


def burgers(*overrides: str) -> tuple[BurgersTask, object]:
    cfg = compose_config(["experiment=jagtap_burgers", *SMALL, *overrides])
    return TASKS["burgers"].build(cfg, CPU), cfg


@pytest.mark.slow
@pytest.mark.parametrize("method", SAMPLINGS)
def test_every_sampling_gives_the_documented_points_in_the_domain(method):
    task, _ = burgers(f"dataset.sampling={method}")
    xt_f, xt_data, u_data = task.batch
    assert xt_f.shape == (300, 2) and xt_data.shape == (400, 2) and u_data.shape == (400, 1)
    assert xt_f[:, 0].abs().max() <= 1 and (xt_f[:, 1] >= 0).all() and (xt_f[:, 1] <= 1).all()
    initial, boundary = xt_data[:200], xt_data[200:]
    assert (initial[:, 1] == 0).all() and initial[:, 0].abs().max() <= 1
    assert (boundary[:, 0].abs() == 1).all() and (boundary[:, 1] >= 0).all()
    assert torch.allclose(u_data[:200, 0], -torch.sin(math.pi * initial[:, 0]), atol=1e-6)
    assert (u_data[200:] == 0).all()
    function = TASKS["function"].build(
        compose_config(["experiment=jagtap_discontinuous", f"dataset.sampling={method}"]), CPU
    )
    x = function.x_train[:, 0]
    assert x.shape == (300,) and (x >= -3).all() and (x <= 3).all()
    assert (x[1:] >= x[:-1]).all()  # sorted


@pytest.mark.parametrize("method", ["hammersley", "halton", "sobol"])
def test_quasi_random_sets_are_deterministic_and_low_discrepancy(method):
    def draw(seed: int) -> np.ndarray:
        return sample_box(512, [0.0, 0.0], [1.0, 1.0], method, torch.Generator().manual_seed(seed))

    first, again, other = draw(7).numpy(), draw(7).numpy(), draw(8).numpy()
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    lhs = [draw_lhs(seed) for seed in range(5)]
    assert qmc.discrepancy(first) < min(qmc.discrepancy(p) for p in lhs)
    assert qmc.discrepancy(other) < min(qmc.discrepancy(p) for p in lhs)


def draw_lhs(seed: int) -> np.ndarray:
    return sample_box(
        512, [0.0, 0.0], [1.0, 1.0], "lhs", torch.Generator().manual_seed(seed)
    ).numpy()


def _model(cfg) -> nn.Module:
    seed_everything(cfg.seed)
    return build_model(cfg.model, (2,), 1, ActivationFactory(cfg.activation))


@pytest.mark.slow
def test_a_seed_redraws_the_points_the_same_way_for_every_column():
    tanh, tanh_cfg = burgers("activation=tanh", "seed=3")
    slopes, slopes_cfg = burgers("activation=layerwise", "seed=3")
    other, _ = burgers("activation=tanh", "seed=4")
    for a, b in zip(tanh.batch, slopes.batch, strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(tanh.batch[0], other.batch[0])
    assert tanh.settings()["data_seed"] == 3 and other.settings()["data_seed"] == 4
    # a stacked run's task for another seed draws that seed's points
    assert torch.equal(tanh.with_seed(4).batch[0], other.batch[0])
    # the same initial weights where the shapes allow (the slopes add parameters only)
    weights = {k: v for k, v in _model(tanh_cfg).state_dict().items()}
    adaptive = _model(slopes_cfg).state_dict()
    assert all(torch.equal(v, adaptive[k]) for k, v in weights.items())
    assert set(adaptive) - set(weights)  # its slopes


def test_a_fixed_split_seed_keeps_one_draw_for_every_seed():
    one, _ = burgers("seed=3", "dataset.split_seed=11")
    two, _ = burgers("seed=4", "dataset.split_seed=11")
    assert torch.equal(one.batch[0], two.batch[0])
    assert one.with_seed(9) is one and one.settings()["data_seed"] == 11


def test_the_shock_position_of_the_exact_solution_and_of_a_shifted_one():
    x = np.linspace(-1, 1, 2001)
    end = exact_u(x, np.ones_like(x))
    assert abs(shock_position(x, end)) < 1e-6
    for shift in (0.05, -0.12):
        moved = exact_u(np.clip(x - shift, -1, 1), np.ones_like(x))
        assert shock_position(x, moved) == pytest.approx(shift, abs=1e-3)
    assert shock_position(x, np.ones_like(x)) is None


class Step(nn.Module):
    """u(x, t) = -tanh((x - x0) / 0.01): a shock at x0 for every t (the network sees
    (x, 2t - 1))."""

    def __init__(self, x0: float) -> None:
        super().__init__()
        self.x0 = x0
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        return -torch.tanh((xt[:, :1] - self.x0) / 0.01) * self.w


def test_the_shock_error_is_reported_where_the_network_puts_it():
    task, _ = burgers()
    metrics = task.evaluate(Step(0.1))
    assert metrics["test_shock_error"] == pytest.approx(0.1, abs=2e-3)
    assert task.evaluate(Step(0.0))["test_shock_error"] < 2e-3
    assert "test_shock_error" in task.goals
    assert set(task.figures(Step(0.1))) == {"solution", "profiles"}


class Quadratic(nn.Module):
    """u = a x^2 + b t' (t' = 2t - 1, as the network sees it): derivatives by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.7))
        self.b = nn.Parameter(torch.tensor(-0.3))

    def forward(self, xt: torch.Tensor) -> torch.Tensor:
        return (self.a * xt[:, :1] ** 2 + self.b * xt[:, 1:]).float()


@pytest.mark.slow
@pytest.mark.parametrize("at_data", [False, True])
@pytest.mark.parametrize("means", ["joint", "separate"])
def test_the_deepxde_options_compute_the_loss_by_hand(at_data, means):
    task, _ = burgers(
        "dataset.n_collocation=3",
        "dataset.n_boundary=4",
        f"task.residual_at_data={str(at_data).lower()}",
        f"task.data_means={means}",
        "task.derivatives=autograd",
    )
    xt_f, xt_data, u_data = task.batch
    a, b, nu = 0.7, -0.3, task.nu

    def by_hand(xt: torch.Tensor) -> torch.Tensor:
        x, t = xt[:, 0].double(), xt[:, 1].double()
        u = a * x**2 + b * (2 * t - 1)
        return 2 * b + u * 2 * a * x - nu * 2 * a  # u_t + u u_x - nu u_xx

    points = torch.cat([xt_f, xt_data]) if at_data else xt_f
    res = by_hand(points).pow(2).mean()
    u = a * xt_data[:, 0].double() ** 2 + b * (2 * xt_data[:, 1].double() - 1)
    misfit = (u - u_data[:, 0].double()).pow(2)
    data = misfit[:2].mean() + misfit[2:].mean() if means == "separate" else misfit.mean()
    model = Quadratic()
    assert task.loss(model, task.batch).item() == pytest.approx((res + data).item(), rel=1e-5)
    # the residual helper agrees with the hand-written derivatives
    f = residual(task.u(model), xt_f, nu)
    assert torch.allclose(f.reshape(-1).double(), by_hand(xt_f), atol=1e-5)


def digits(*overrides: str):
    cfg = compose_config(["dataset=digits", "model=mlp", *overrides])
    return TASKS["classification"].build(cfg, CPU)


def test_a_seed_redraws_the_hold_out_and_a_drawn_test_split_for_every_column():
    three = digits("seed=3", "dataset.val_fraction=0.2")
    adaptive = digits("seed=3", "dataset.val_fraction=0.2", "activation=neuronwise_slope")
    four = digits("seed=4", "dataset.val_fraction=0.2")
    for split in ("train", "val", "test"):
        a, b, c = (t.data.splits[split].x for t in (three, adaptive, four))
        assert torch.equal(a, b)  # one seed: the same data for every column
        assert a.shape == c.shape and not torch.equal(a, c)  # another seed: another draw
    assert three.settings()["data_seed"] == 3 and four.settings()["data_seed"] == 4
    # a stacked run's task for another seed holds that seed's draw; its own seed keeps its own
    redrawn = three.with_seed(4)
    assert torch.equal(redrawn.data.val.x, four.data.val.x) and redrawn.settings()["data_seed"] == 4
    assert three.with_seed(3).data is three.data


def test_a_fixed_split_seed_shares_one_draw_and_an_official_split_never_copies():
    one = digits("seed=3", "dataset.split_seed=11", "dataset.val_fraction=0.2")
    two = digits("seed=4", "dataset.split_seed=11", "dataset.val_fraction=0.2")
    assert torch.equal(one.data.val.x, two.data.val.x) and torch.equal(
        one.data.test.x, two.data.test.x
    )
    assert one.with_seed(9).data is one.data and one.settings()["data_seed"] == 11
    # the batch order still follows the run's seed
    first = next(one.train_batches(0))[1]
    assert not torch.equal(first, next(one.with_seed(9).train_batches(0))[1])


def test_a_split_seed_must_be_null_or_a_count():
    from adaptrun.config.check import check_config
    from adaptrun.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"dataset\.split_seed.*null.*>= 0"):
        check_config(compose_config(["dataset=digits", "dataset.split_seed=-1"]))


def _peer():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "deepxde_peer.py"
    spec = importlib.util.spec_from_file_location("deepxde_peer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports neither DeepXDE nor torch at the top
    return module


@pytest.mark.parametrize(
    ("activation", "name"),
    [("tanh", "tanh"), ("global", "LAAF-10 tanh"), ("layerwise", "LAAF-10 tanh")],
)
@pytest.mark.slow
def test_the_deepxde_peer_names_what_deepxde_has(activation, name):
    cfg = compose_config(["experiment=jagtap_burgers", f"activation={activation}"])
    assert _peer().activation_name(cfg.activation) == name


@pytest.mark.parametrize("activation", ["neuronwise", "global_slope"])
def test_the_deepxde_peer_refuses_what_deepxde_lacks(activation):
    cfg = compose_config(["experiment=jagtap_burgers", f"activation={activation}"])
    with pytest.raises(SystemExit, match="DeepXDE's PyTorch backend has no"):
        _peer().activation_name(cfg.activation)
    assert _peer().seeds_of("0-4") == [0, 1, 2, 3, 4] and _peer().seeds_of("2,5") == [2, 5]


def test_validation_points_are_drawn_per_seed_apart_from_the_training_and_test_points():
    """dataset.n_val: the function and Burgers tasks draw validation points of their own
    (uniform, a stream apart, so the training draw is unchanged), scored as val_* with
    the exact target there; 0 (the default) adds none."""
    function = lambda *o: TASKS["function"].build(  # noqa: E731
        compose_config(["experiment=jagtap_discontinuous", *o]), CPU
    )
    plain, held = function(), function("dataset.n_val=64")
    assert torch.equal(plain.x_train, held.x_train)  # the training draw is unchanged
    assert "val_rel_l2" not in plain.goals and held.goals["val_rel_l2"] == "min"
    assert held.x_val.shape == (64, 1) and not np.isin(held.x_val, held.x_train).any()
    drawn = held._val_points(0)  # float64, before the float32 the network sees
    assert torch.equal(held.y_val, held.fn(drawn)[:, None].float())
    assert drawn.min() >= -3.0 and drawn.max() <= 3.0
    assert not torch.equal(held.with_seed(1).x_val, held.x_val)  # the seed redraws it
    net = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    scores = held.evaluate(net)
    with torch.no_grad():
        err = net(held.x_val) - held.y_val
    assert scores["val_rel_l2"] == pytest.approx((err.norm() / held.y_val.norm()).item())
    assert set(plain.evaluate(net)) == {"test_mse", "test_rel_l2"}

    task, _ = burgers("dataset.n_val=50")
    assert task.xt_val.shape == (50, 2) and task.goals["val_rel_l2"] == "min"
    x, t = task.xt_val[:, 0].double().numpy(), task.xt_val[:, 1].double().numpy()
    assert task.u_val[:, 0].numpy() == pytest.approx(exact_u(x, t, task.nu), abs=1e-5)
    assert not torch.equal(task.with_seed(3).xt_val, task.xt_val)
    net_2d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    assert {"val_mse", "val_rel_l2"} <= set(task.evaluate(net_2d))
    assert "val_rel_l2" not in burgers()[0].evaluate(net_2d)
