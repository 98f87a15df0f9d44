"""The MOLF + AdAct + OWO second-order trainer for one-hidden-layer networks (MLP1).

Per iteration, on the whole training set, with E = mean_p sum_i (t_pi - y_pi)^2 on
one-hot targets:
  1. MOLF: G = -dE/dW for the input weights W; one learning factor z_k per hidden unit
     from the Gauss-Newton system H z = g, solved by orthogonal least squares; W += diag(z) G.
  2. AdAct: G_a = -dE/dA for the hinge values A; the output is linear in A, so the best
     factor along G_a is exact: z = g / h.
  3. OWO: the output weights (from [1, x, O]) by the normal equations R W_o^T = C.
Everything is torch linear algebra, so it runs on the GPU too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from adaptrun.activations import AdAct
from adaptrun.models.mlp1 import MLP1


def ols_solve(r: torch.Tensor, c: torch.Tensor, tol: float = 1e-10) -> torch.Tensor:
    """Minimise w^T r w - 2 c^T w for symmetric positive semi-definite r.

    Gram-Schmidt in the inner product of r: a basis function whose remainder after the
    earlier ones is (nearly) zero is linearly dependent on them and is dropped (its
    weight stays 0) instead of producing a division by zero. ``c`` may have several
    columns (one system per column).
    """
    n = r.shape[0]
    basis = torch.zeros(n, n, dtype=r.dtype, device=r.device)  # rows: orthonormal a_m
    scale = r.diagonal().abs().max().clamp_min(torch.finfo(r.dtype).tiny)
    for m in range(n):
        a = torch.zeros(n, dtype=r.dtype, device=r.device)
        a[m] = 1.0
        a = a - basis.T @ (basis @ (r @ a))
        norm2 = a @ r @ a
        if norm2 > tol * scale:
            basis[m] = a / norm2.sqrt()
    return basis.T @ (basis @ c)


def _mse_grad(model: MLP1, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    error = (targets - model(x)).pow(2).sum(1).mean()
    error.backward()
    return error.detach()


def molf_step(model: MLP1, x: torch.Tensor, targets: torch.Tensor, tol: float = 1e-10) -> None:
    """Per-hidden-unit learning factors along the negative gradient of the input weights."""
    _mse_grad(model, x, targets)
    g_w = -model.hidden.weight.grad
    g_b = -model.hidden.bias.grad
    with torch.no_grad():
        flat = x.flatten(1)
        net = model.hidden(flat).requires_grad_(True)
    with torch.enable_grad():
        slope = torch.autograd.grad(model.act(net).sum(), net)[0]  # f'(net), elementwise
    with torch.no_grad():
        dnet = flat @ g_w.T + g_b  # (P, Nh)
        w_oh = model.output.weight[:, flat.shape[1] :]  # outputs from hidden units (M, Nh)
        u = w_oh[None, :, :] * (slope * dnet)[:, None, :]  # (P, M, Nh)
        error = targets - model(x)
        p = flat.shape[0]
        hessian = 2.0 / p * torch.einsum("pik,pij->kj", u, u)
        gradient = 2.0 / p * torch.einsum("pi,pik->k", error, u)
        z = ols_solve(hessian.double(), gradient.double()[:, None], tol)[:, 0].to(g_w.dtype)
        model.hidden.weight += z[:, None] * g_w
        model.hidden.bias += z * g_b


def adact_step(model: MLP1, x: torch.Tensor, targets: torch.Tensor) -> None:
    """The exact best step along -dE/dA for AdAct hinge values (outputs are linear in A)."""
    if not isinstance(model.act, AdAct):
        return
    _mse_grad(model, x, targets)
    direction = -model.act.values.grad
    with torch.no_grad():
        flat, net, _ = model.features(x)
        along = functional_call(model.act, {"values": direction}, (net,))  # dO/dz
        w_oh = model.output.weight[:, flat.shape[1] :]
        v = along @ w_oh.T  # dy/dz, (P, M)
        error = targets - model(x)
        h = v.pow(2).sum()
        if h > 0:
            model.act.values += (error * v).sum() / h * direction


def output_design(model: MLP1, x: torch.Tensor) -> torch.Tensor:
    """[1, x, O]: what the output weights multiply."""
    flat, _, o = model.features(x)
    return torch.cat([torch.ones_like(flat[:, :1]), flat, o], 1)


def owo_step(model: MLP1, x: torch.Tensor, targets: torch.Tensor, tol: float = 1e-10) -> None:
    """Output weights solving R W_o^T = C, R = X^T X / P, C = X^T T / P (least squares)."""
    with torch.no_grad():
        design = output_design(model, x).double()
        r = design.T @ design / design.shape[0]
        c = design.T @ targets.double() / design.shape[0]
        w = ols_solve(r, c, tol).T.to(model.output.weight.dtype)  # (M, 1 + N + Nh)
        model.output.bias.copy_(w[:, 0])
        model.output.weight.copy_(w[:, 1:])


def molf_iteration(
    model: MLP1, x: torch.Tensor, labels: torch.Tensor, classes: int, tol: float = 1e-10
) -> None:
    """One MOLF + AdAct + OWO iteration on the whole batch (MSE on one-hot targets)."""
    targets = F.one_hot(labels, classes).to(x.dtype)
    molf_step(model, x, targets, tol)
    adact_step(model, x, targets)
    owo_step(model, x, targets, tol)
    model.zero_grad(set_to_none=True)


class Passive(torch.optim.Optimizer):
    """The optimizer slot for a trainer that sets the weights itself: step() does nothing."""

    def __init__(self, params: object) -> None:
        super().__init__(params, {"lr": 0.0})

    def step(self, closure: object = None) -> None:
        return None
