"""DeepXDE on the benchmark's own Burgers problem, for ``bench_pinn.py --peer deepxde``.

The same collocation points (as anchors), the same initial/boundary points and values
(a PointSetBC), the same network (2 -> hidden x width -> 1, layer-wise adaptive tanh
"LAAF-n tanh", Glorot normal), the same loss (weighted mean squared residual plus data
misfit) and optimizer (Adam). DeepXDE differentiates with nested autograd.
DeepXDE is a benchmark peer only: install it yourself (``pip install deepxde``).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

os.environ.setdefault("DDE_BACKEND", "pytorch")


def available() -> bool:
    try:
        import deepxde  # noqa: F401
    except ImportError:
        return False
    return True


def deepxde_rate(cfg: Any, batch: Any, steps: int) -> tuple[str, float]:
    """(DeepXDE's version, its Adam steps per second after a warm-up) on ``batch``: the
    benchmark task's (collocation points, data points, data values)."""
    import deepxde as dde

    dde.config.set_default_float("float32")
    xt_f, xt_data, u_data = (v.detach().cpu().numpy() for v in batch)
    nu = float(cfg.dataset.nu)
    geom = dde.geometry.GeometryXTime(
        dde.geometry.Interval(-1.0, 1.0), dde.geometry.TimeDomain(0.0, 1.0)
    )

    def pde(x: Any, u: Any) -> Any:
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        return u_t + u * u_x - nu * u_xx

    data = dde.data.TimePDE(
        geom,
        pde,
        [dde.icbc.PointSetBC(xt_data, u_data, shuffle=False)],
        num_domain=0,
        num_boundary=0,
        num_initial=0,
        anchors=xt_f,
    )
    act = cfg.activation
    n = act.get("n", 1)
    name = f"LAAF-{n:g} {act.base}" if act.get("variant") == "layer" else act.base
    sizes = [2] + [int(cfg.model.width)] * int(cfg.model.hidden_layers) + [1]
    net = dde.nn.FNN(sizes, name, "Glorot normal")
    model = dde.Model(data, net)
    weights = [float(cfg.task.weight_residual), float(cfg.task.weight_data)]
    model.compile("adam", lr=float(cfg.optimizer.lr), loss_weights=weights)
    model.train(iterations=3, display_every=math.inf, verbose=0)  # warm-up
    start = time.perf_counter()
    model.train(iterations=steps, display_every=math.inf, verbose=0)
    return dde.__version__, steps / (time.perf_counter() - start)
