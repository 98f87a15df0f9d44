"""DeepXDE on adaptrun's own Burgers problem: an independent implementation to check ours by.

    python scripts/deepxde_peer.py activation=tanh --seeds 0-4
    python scripts/deepxde_peer.py activation=global --seeds 0-4 --out peer_laaf10.json

For each seed: the points that seed draws in adaptrun (the collocation points as anchors,
the initial and boundary points and values as PointSetBCs), the same network
(2 -> hidden x width -> 1 on the inputs (x, 2t - 1), Glorot normal), the same loss as the
config computes it (``task.residual_at_data`` adds the initial/boundary points to the
anchors, ``task.data_means=separate`` makes the initial and boundary points two
conditions, each its own mean) and the same Adam steps; DeepXDE's own initial weights
(``dde.config.set_random_seed``) and nested autograd. Then the errors adaptrun reports
(rel L2 on the exact solution's grid, the shock position at t = 1), scored by the task's
own ``test_scores``. Activations: a fixed base, ``global`` (DeepXDE's ``LAAF-n``: in its
PyTorch backend one slope shared by every layer) and ``layerwise`` (one ``LAAF-n`` per
layer); DeepXDE has no neuron-wise slopes or slope recovery in that backend.

Extra arguments are config overrides on top of experiment=jagtap_burgers, as for
``bench_pinn.py``, which also uses this module for ``--peer deepxde``. DeepXDE is a peer
for checks only, not a dependency: ``pip install deepxde``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("DDE_BACKEND", "pytorch")


def available() -> bool:
    try:
        import deepxde  # noqa: F401
    except ImportError:
        return False
    return True


def activation_name(act: Any) -> str | list[str]:
    """DeepXDE's name for the configured activation, or SystemExit naming what it lacks."""
    family, variant = act.get("family"), act.get("variant")
    if family == "fixed":
        return str(act.base)
    recovery = float(act.get("slope_recovery", 0.0))
    if family != "slope" or variant not in ("global", "layerwise") or recovery:
        sys.exit(
            f"deepxde_peer: DeepXDE's PyTorch backend has no {act.name} (it has fixed bases, "
            "one shared slope and layer-wise slopes, without slope recovery); use "
            "activation=tanh, global or layerwise"
        )
    return f"LAAF-{float(act.n):g} {act.base}"


def build(cfg: Any, batch: Any) -> Any:
    """A compiled ``dde.Model`` for the config's Burgers problem on ``batch`` (the task's
    collocation points, data points and data values, data points initial first)."""
    import deepxde as dde
    import numpy as np
    import torch

    from adaptrun.tasks.burgers import SCALE, SHIFT

    dde.config.set_default_float("float32")
    xt_f, xt_data, u_data = (v.detach().cpu().numpy() for v in batch)
    if cfg.task.residual_at_data:
        xt_f = np.concatenate([xt_f, xt_data])
    nu = float(cfg.dataset.nu)
    geom = dde.geometry.GeometryXTime(
        dde.geometry.Interval(-1.0, 1.0), dde.geometry.TimeDomain(0.0, 1.0)
    )

    def pde(x: Any, u: Any) -> Any:
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        return u_t + u * u_x - nu * u_xx

    if cfg.task.data_means == "separate":
        n = int(cfg.dataset.n_boundary) // 2
        parts = [(xt_data[:n], u_data[:n]), (xt_data[n:], u_data[n:])]
    else:
        parts = [(xt_data, u_data)]
    bcs = [dde.icbc.PointSetBC(x, u, shuffle=False) for x, u in parts]
    data = dde.data.TimePDE(
        geom, pde, bcs, num_domain=0, num_boundary=0, num_initial=0, anchors=xt_f
    )
    name = activation_name(cfg.activation)
    depth = int(cfg.model.hidden_layers)
    if name.startswith("LAAF") and cfg.activation.variant == "layerwise":
        name = [name] * (depth + 1)  # a list: a slope object (and parameter) per layer
    sizes = [2] + [int(cfg.model.width)] * depth + [1]
    net = dde.nn.FNN(sizes, name, "Glorot normal")
    scale, shift = torch.tensor(SCALE), torch.tensor(SHIFT)
    net.apply_feature_transform(lambda xt: xt * scale + shift)  # what adaptrun's net sees
    model = dde.Model(data, net)
    weights = [float(cfg.task.weight_residual)] + [float(cfg.task.weight_data)] * len(bcs)
    model.compile("adam", lr=float(cfg.optimizer.lr), loss_weights=weights)
    return model


def deepxde_rate(cfg: Any, batch: Any, steps: int) -> tuple[str, float]:
    """(DeepXDE's version, its Adam steps per second after a warm-up) on ``batch``."""
    import deepxde as dde

    model = build(cfg, batch)
    model.train(iterations=3, display_every=math.inf, verbose=0)  # warm-up
    start = time.perf_counter()
    model.train(iterations=steps, display_every=math.inf, verbose=0)
    return dde.__version__, steps / (time.perf_counter() - start)


def run_seed(cfg: Any, task: Any, seed: int) -> dict[str, float]:
    """Train DeepXDE on the points ``seed`` draws in adaptrun; its errors and wall time."""
    import deepxde as dde
    import torch

    dde.config.set_random_seed(seed)
    seeded = task.with_seed(seed)
    model = build(cfg, seeded.batch)
    start = time.perf_counter()
    model.train(iterations=int(cfg.trainer.epochs), display_every=math.inf, verbose=0)
    seconds = time.perf_counter() - start
    net = model.net.eval()
    with torch.no_grad():
        scores = seeded.test_scores(net)
    losses = [float(v) for v in model.train_state.loss_train]
    return {"seed": seed, "final_train_loss": sum(losses), "seconds": seconds, **scores}


def interval(values: list[float]) -> str:
    """Mean [95% Student-t interval], as adaptrun-report prints it."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.4f}"
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return f"{mean:.4f} [{mean - half:.4f}, {mean + half:.4f}]"


def seeds_of(text: str) -> list[int]:
    """``0-4`` or ``0,2,5``."""
    if "-" in text:
        first, last = text.split("-")
        return list(range(int(first), int(last) + 1))
    return [int(s) for s in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,2,5 (default 0-4)")
    parser.add_argument("--out", type=Path, help="also write every seed's record here (JSON)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. activation=global")
    args = parser.parse_args()
    if not available():
        parser.error("needs DeepXDE: pip install deepxde")
    import deepxde as dde
    import torch
    from hydra import compose, initialize_config_dir

    from adaptrun.config.check import check_config
    from adaptrun.config.options import config_dir
    from adaptrun.tasks.burgers import BurgersTask

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", ["experiment=jagtap_burgers", *args.overrides])
    check_config(cfg)
    activation_name(cfg.activation)  # refuse what DeepXDE lacks before any training
    task = BurgersTask(cfg.dataset, cfg.task, torch.device("cpu"), "autograd", cfg.seed)
    label = f"DeepXDE {dde.__version__} {cfg.activation.name}"
    print(
        f"{label}: {cfg.trainer.epochs} Adam steps, {cfg.dataset.sampling} points drawn by "
        f"each seed (dataset.split_seed={cfg.dataset.split_seed}), "
        f"residual_at_data={cfg.task.residual_at_data}, data_means={cfg.task.data_means}"
    )
    records = []
    for seed in seeds_of(args.seeds):
        records.append(run_seed(cfg, task, seed))
        r = records[-1]
        print(
            f"seed {seed}: rel L2 {r['test_rel_l2']:.4f}, shock error "
            f"{r['test_shock_error']:.4f}, train loss {r['final_train_loss']:.2e}, "
            f"{r['seconds']:.0f} s",
            flush=True,
        )
    for key in ("test_rel_l2", "test_shock_error", "final_train_loss"):
        print(f"{label} {key}: {interval([r[key] for r in records])} (n = {len(records)})")
    if args.out:
        args.out.write_text(json.dumps({"peer": label, "runs": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
