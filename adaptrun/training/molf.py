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

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, overload

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from adaptrun.activations import AdAct, Capabilities
from adaptrun.core.errors import is_count, is_number, require
from adaptrun.models.mlp1 import MLP1
from adaptrun.models.registry import ModelCapabilities
from adaptrun.tasks import Task
from adaptrun.tasks.registry import TaskCapabilities
from adaptrun.training.optim import OPTIMIZERS, OptimizerCapabilities, OptimizerEntry
from adaptrun.training.steps import Step


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


LOSSES = ("mse", "cross_entropy")


def _error(model: MLP1, x: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """E: the mean squared error on one-hot targets, or the mean cross-entropy."""
    y = model(x)
    if loss == "mse":
        return (targets - y).pow(2).sum(1).mean()
    return F.cross_entropy(y, targets.argmax(1))


def _backward(model: MLP1, x: torch.Tensor, targets: torch.Tensor, loss: str) -> None:
    model.zero_grad(set_to_none=True)
    _error(model, x, targets, loss).backward()


def _geometry(
    y: torch.Tensor, targets: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """-dE/dy (P, M) and the Gauss-Newton curvature d2E/dy2 per pattern (P, M, M)."""
    p, m = y.shape
    if loss == "mse":
        eye = torch.eye(m, dtype=y.dtype, device=y.device).expand(p, m, m)
        return 2.0 / p * (targets - y), 2.0 / p * eye
    probs = torch.softmax(y, 1)
    curvature = torch.diag_embed(probs) - probs[:, :, None] * probs[:, None, :]
    return (targets - probs) / p, curvature / p


def _grad(param: torch.Tensor) -> torch.Tensor:
    """The gradient _backward left in ``param``."""
    if param.grad is None:
        raise RuntimeError("MOLF: the backward pass left no gradient in a trained weight")
    return param.grad


def molf_step(
    model: MLP1, x: torch.Tensor, targets: torch.Tensor, tol: float = 1e-10, loss: str = "mse"
) -> None:
    """Per-hidden-unit learning factors along the negative gradient of the input weights."""
    _backward(model, x, targets, loss)
    g_w, g_b = -_grad(model.hidden.weight), -_grad(model.hidden.bias)
    with torch.no_grad():
        flat = x.flatten(1)
        net = model.hidden(flat).requires_grad_(True)
    with torch.enable_grad():
        slope = torch.autograd.grad(model.act(net).sum(), net)[0]  # f'(net), elementwise
    with torch.no_grad():
        dnet = flat @ g_w.T + g_b  # (P, Nh)
        w_oh = model.output.weight[:, flat.shape[1] :]  # outputs from hidden units (M, Nh)
        u = w_oh[None, :, :] * (slope * dnet)[:, None, :]  # dy/dz_k, (P, M, Nh)
        neg_grad, curvature = _geometry(model(x), targets, loss)
        hessian = torch.einsum("pik,pij,pjl->kl", u, curvature, u)
        gradient = torch.einsum("pi,pik->k", neg_grad, u)
        z = ols_solve(hessian.double(), gradient.double()[:, None], tol)[:, 0].to(g_w.dtype)
        model.hidden.weight.add_(z[:, None] * g_w)
        model.hidden.bias.add_(z * g_b)


def adact_step(model: MLP1, x: torch.Tensor, targets: torch.Tensor, loss: str = "mse") -> None:
    """The best step along -dE/dA for AdAct hinge values: exact for the MSE (the outputs
    are linear in A), one Gauss-Newton step for the cross-entropy."""
    if not isinstance(model.act, AdAct):
        return
    _backward(model, x, targets, loss)
    direction = -_grad(model.act.values)
    with torch.no_grad():
        flat, net, _ = model.features(x)
        along = functional_call(model.act, {"values": direction}, (net,))  # dO/dz
        w_oh = model.output.weight[:, flat.shape[1] :]
        v = along @ w_oh.T  # dy/dz, (P, M)
        neg_grad, curvature = _geometry(model(x), targets, loss)
        h = torch.einsum("pi,pij,pj->", v, curvature, v)
        if h > 0:
            model.act.values.add_((neg_grad * v).sum() / h * direction)


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


def owo_newton(
    model: MLP1, x: torch.Tensor, targets: torch.Tensor, steps: int = 3, l2: float = 1e-3
) -> None:
    """Output weights by Newton steps on mean cross-entropy + l2/2 |W_o|^2 (strictly convex:
    without the L2 term, separable data would push the weights to infinity). A step is
    halved until the objective goes down."""
    with torch.no_grad():
        design = output_design(model, x).double()
        d = design.shape[1]
        labels = targets.argmax(1)
        w = torch.cat([model.output.bias[:, None], model.output.weight], 1).double()
        m = w.shape[0]

        def objective(weights: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(design @ weights.T, labels) + 0.5 * l2 * weights.pow(2).sum()

        eye = torch.eye(m * d, dtype=w.dtype, device=w.device)
        for _ in range(steps):
            neg_grad, curvature = _geometry(design @ w.T, targets.double(), "cross_entropy")
            grad = -neg_grad.T @ design + l2 * w  # (M, D)
            hessian = torch.einsum("pij,pa,pb->iajb", curvature, design, design)
            delta = torch.linalg.solve(hessian.reshape(m * d, m * d) + l2 * eye, grad.reshape(-1))
            before, scale = objective(w), 1.0
            while scale > 1e-4 and objective(w - scale * delta.reshape(m, d)) > before:
                scale /= 2
            w = w - scale * delta.reshape(m, d)
        model.output.bias.copy_(w[:, 0].to(model.output.bias.dtype))
        model.output.weight.copy_(w[:, 1:].to(model.output.weight.dtype))


def molf_iteration(
    model: MLP1,
    x: torch.Tensor,
    labels: torch.Tensor,
    classes: int,
    tol: float = 1e-10,
    owo: str = "mse",
    newton_steps: int = 3,
    l2: float = 1e-3,
) -> None:
    """One MOLF + AdAct + OWO iteration on the whole batch.

    ``owo=mse``: every step works on the MSE against one-hot targets and OWO is one linear
    solve (the original group's method). ``owo=newton``: every step works on the
    cross-entropy, MOLF and AdAct through its Gauss-Newton curvature, and OWO takes
    ``newton_steps`` Newton steps.
    """
    targets = F.one_hot(labels, classes).to(x.dtype)
    loss = "mse" if owo == "mse" else "cross_entropy"
    molf_step(model, x, targets, tol, loss)
    adact_step(model, x, targets, loss)
    if owo == "mse":
        owo_step(model, x, targets, tol)
    else:
        owo_newton(model, x, targets, newton_steps, l2)
    model.zero_grad(set_to_none=True)


class Passive(torch.optim.Optimizer):
    """The optimizer slot for a trainer that sets the weights itself: step() does nothing."""

    def __init__(self, params: Any) -> None:
        super().__init__(params, {"lr": 0.0})

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Nothing to update; a closure is evaluated, as Optimizer.step promises."""
        return None if closure is None else closure()


def molf_train_step(model: nn.Module, task: Task, cfg: Any) -> Step:
    """One MOLF + AdAct + OWO iteration on the batch (the whole training set); reports
    the task's own loss after the update."""
    if not isinstance(model, MLP1):  # the optimizer's check refuses other models first
        raise TypeError(f"MOLF trains a one-hidden-layer MLP1, not {type(model).__name__}")
    mlp = model

    def step(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x, labels = batch
        molf_iteration(
            mlp,
            x,
            labels,
            task.num_outputs,
            float(cfg["tol"]),
            cfg["owo"],
            int(cfg["newton_steps"]),
            float(cfg["l2"]),
        )
        with torch.no_grad():
            loss = task.loss(model, batch)
        return loss, torch.zeros((), device=loss.device)

    return step


@dataclasses.dataclass
class MolfConfig:
    name: str = "molf"
    owo: Any = "mse"
    newton_steps: Any = 3
    l2: Any = 0.001
    tol: Any = 1e-10


def _check(cfg: Mapping[str, Any]) -> None:
    require(
        cfg["owo"] in ("mse", "newton"),
        "optimizer.owo",
        f"unknown output-weight solver {cfg['owo']!r}; valid: mse, newton",
    )
    require(is_count(cfg["newton_steps"]), "optimizer.newton_steps", "must be an integer >= 1")
    require(is_number(cfg["l2"]) and cfg["l2"] > 0, "optimizer.l2", "must be > 0")
    require(is_number(cfg["tol"]) and cfg["tol"] > 0, "optimizer.tol", "must be > 0")


def _fits(
    cfg: Mapping[str, Any],
    model: ModelCapabilities,
    task: TaskCapabilities,
    activation: Capabilities,
) -> None:
    """MOLF trains only what declares the ``molf`` capability: a one-hidden-layer model
    with bypass weights, class targets, and activations it has a step for."""
    require(
        model.molf, "model", f"optimizer=molf trains model=mlp1 (got model={cfg['model']['name']})"
    )
    require(task.molf, "task", f"optimizer=molf is for classification, not {cfg['task']['name']}")
    require(
        activation.molf,
        "activation",
        f"optimizer=molf trains fixed activations and adact, not {cfg['activation']['name']}",
    )


def _passive(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    return Passive(model.parameters())  # molf_iteration sets the weights


OPTIMIZERS.register(
    OptimizerEntry(
        "molf",
        MolfConfig,
        _passive,
        # its learning factors are solved for; its least squares couple a run's weights
        capabilities=OptimizerCapabilities(learning_rate=False, elementwise=False, owns_step=True),
        check=_check,
        fits=_fits,
        step=molf_train_step,
    )
)
