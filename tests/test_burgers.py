"""The exact Burgers solution, the PDE residual, and the discontinuous target."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adaptrun.tasks.burgers import BurgersTask, residual, residual_functional
from adaptrun.tasks.burgers_exact import exact_u
from adaptrun.tasks.function import FUNCTIONS
from adaptrun.tasks.sampling import sample_box

NU = 0.01 / math.pi
X = np.linspace(-1, 1, 41)
T = np.array([0.1, 0.3, 0.5, 0.8, 1.0])


def test_initial_condition_is_exact():
    assert np.array_equal(exact_u(X, np.zeros_like(X)), -np.sin(np.pi * X))
    # and the quadrature joins it continuously
    assert np.abs(exact_u(X, np.full_like(X, 1e-6)) + np.sin(np.pi * X)).max() < 1e-3


def test_boundary_values_are_zero_and_solution_is_odd_in_x():
    for t in T:
        assert abs(exact_u(np.array([-1.0, 1.0]), np.full(2, t))).max() < 1e-10
        u = exact_u(X, np.full_like(X, t))
        np.testing.assert_allclose(u, -u[::-1], atol=1e-12)


def test_quadrature_converges():
    xx, tt = np.meshgrid(X, T)
    ref = exact_u(xx, tt, points=1600)
    errors = [np.abs(exact_u(xx, tt, points=n) - ref).max() for n in (20, 40, 100, 400)]
    assert errors[0] > errors[1] > errors[2] and errors[3] < 1e-10
    assert np.abs(ref).max() <= 1 + 1e-12 and np.isfinite(ref).all()


def _finite_differences(t_end: float, nx: int = 2001) -> tuple[np.ndarray, np.ndarray]:
    """Independent check: u_t + (u^2/2)_x = nu u_xx, central differences, Heun steps."""
    x = np.linspace(-1, 1, nx)
    dx = x[1] - x[0]
    u = -np.sin(np.pi * x)
    steps = math.ceil(t_end / (0.4 * dx * dx / (2 * NU)))
    dt = t_end / steps

    def rhs(v):
        out = np.zeros_like(v)
        flux = 0.5 * v * v
        out[1:-1] = -(flux[2:] - flux[:-2]) / (2 * dx) + NU * (v[2:] - 2 * v[1:-1] + v[:-2]) / dx**2
        return out

    for _ in range(steps):
        mid = u + dt * rhs(u)
        u = 0.5 * (u + mid + dt * rhs(mid))
    return x, u


@pytest.mark.parametrize("t", [0.25, 0.5])
def test_exact_solution_matches_a_fine_finite_difference_solve(t):
    x, u_fd = _finite_differences(t)
    probe = np.array([-0.8, -0.5, -0.2, 0.3, 0.6, 0.9])
    fd = np.interp(probe, x, u_fd)
    np.testing.assert_allclose(exact_u(probe, np.full_like(probe, t)), fd, atol=2e-3)


def _analytic(xt: torch.Tensor) -> torch.Tensor:
    x, t = xt[:, :1], xt[:, 1:]
    return torch.sin(math.pi * x) * torch.exp(-t) + 0.5 * x * x * t


def test_residual_of_a_known_function_is_what_calculus_says():
    gen = torch.Generator().manual_seed(0)
    xt = sample_box(64, [-1.0, 0.0], [1.0, 1.0], "uniform", gen)
    x, t = xt[:, 0], xt[:, 1]
    u = torch.sin(math.pi * x) * torch.exp(-t) + 0.5 * x * x * t
    u_t = -torch.sin(math.pi * x) * torch.exp(-t) + 0.5 * x * x
    u_x = math.pi * torch.cos(math.pi * x) * torch.exp(-t) + x * t
    u_xx = -(math.pi**2) * torch.sin(math.pi * x) * torch.exp(-t) + t
    expected = u_t + u * u_x - NU * u_xx
    torch.testing.assert_close(residual(_analytic, xt, NU), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(
        residual_functional(_analytic, xt, NU), expected, rtol=1e-10, atol=1e-10
    )


def test_discontinuous_target_matches_its_formula():
    x = torch.tensor([-3.0, -1.0, 0.0, 1e-9, 0.5, 3.0], dtype=torch.float64)
    expected = [
        0.2 * math.sin(6 * v) if v <= 0 else 1 + 0.1 * v * math.cos(18 * v) for v in x.tolist()
    ]
    torch.testing.assert_close(
        FUNCTIONS["discontinuous"](x), torch.tensor(expected, dtype=torch.float64)
    )
    assert FUNCTIONS["discontinuous"](torch.tensor([0.0])).item() == 0.0  # left branch at 0
    gaaf = FUNCTIONS["discontinuous_gaaf"](torch.tensor([1.0], dtype=torch.float64)).item()
    assert gaaf == pytest.approx(1 + 0.1 * math.cos(12))


def test_latin_hypercube_puts_one_point_in_each_stratum():
    pts = sample_box(50, [-1.0, 0.0], [1.0, 1.0], "lhs", torch.Generator().manual_seed(1))
    for dim, (lo, hi) in enumerate([(-1.0, 1.0), (0.0, 1.0)]):
        strata = ((pts[:, dim] - lo) / (hi - lo) * 50).floor().long()
        assert sorted(strata.tolist()) == list(range(50))


@pytest.mark.slow
def test_burgers_training_points(compose_cfg):
    cfg = compose_cfg(["experiment=jagtap_burgers"])
    task = BurgersTask(cfg.dataset, cfg.task, torch.device("cpu"))
    xt_f, xt_data, u_data = task.batch
    assert xt_f.shape == (10000, 2) and xt_data.shape == (400, 2) and u_data.shape == (400, 1)
    assert xt_f[:, 0].abs().max() <= 1 and xt_f[:, 1].min() >= 0 and xt_f[:, 1].max() <= 1
    initial = xt_data[:, 1] == 0
    assert initial.sum() >= 200
    torch.testing.assert_close(u_data[initial, 0], -torch.sin(math.pi * xt_data[initial, 0]))
    boundary = ~initial
    assert torch.equal(xt_data[boundary, 0].abs(), torch.ones(int(boundary.sum())))
    assert torch.equal(u_data[boundary], torch.zeros(int(boundary.sum()), 1))
    assert task.u_test.shape == (256 * 100, 1)
