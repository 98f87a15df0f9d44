"""Step rate of the Burgers preset: nested autograd, forward-mode derivatives (eager,
compiled, stacked), side by side.

    python scripts/bench_pinn.py                  # the preset on the current device
    python scripts/bench_pinn.py --steps 50 activation=neuronwise_slope model.hidden_layers=8
    python scripts/bench_pinn.py --peer deepxde   # also DeepXDE (pip install deepxde)
    python scripts/bench_pinn.py --agreement 2000 # accuracy: both modes trained in float64

All paths run side by side in one process on the same network, points and device.
Their first calls (the compiled one includes compilation) are timed apart, the
gradients of forward and autograd compared; the rates are measured after a warm-up;
ratios are to autograd eager. Extra arguments are config
overrides on top of experiment=jagtap_burgers. The process keeps freed tensor memory
(adaptrun.runner.allocator), as every adaptrun run does, unless ``--default-malloc``;
``--peer deepxde`` runs in the same process and gains from it too.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

import deepxde_peer
import torch
from hydra import compose, initialize_config_dir

from adaptrun.config.check import check_config
from adaptrun.config.options import config_dir
from adaptrun.models import build_model
from adaptrun.runner.allocator import keep_freed_memory
from adaptrun.runner.assemble import resolve_device
from adaptrun.tasks.burgers import BurgersTask
from adaptrun.training.optim import build_optimizer
from adaptrun.training.stacked import StackedTask, stack_models
from adaptrun.training.steps import FunctionalStep


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _first_call(step: Callable, batch: Any, device: torch.device) -> tuple[float, float]:
    """(loss, seconds) of a step's first call."""
    start = time.perf_counter()
    loss, _ = step(batch)
    _sync(device)
    return loss.item(), time.perf_counter() - start


def _rate(
    step: Callable, model: torch.nn.Module, batch: Any, steps: int, device: torch.device
) -> float:
    """Steps per second after a short warm-up."""
    for _ in range(3):
        step(batch)
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        step(batch)
    _sync(device)
    return steps / (time.perf_counter() - start)


def _stacked_rate(
    cfg: Any, task: Any, runs: int, steps: int, device: torch.device, compiled: bool = False
) -> float:
    """Runs x steps per second of ``runs`` seeds trained as one vmapped stack."""
    models = []
    for r in range(runs):
        torch.manual_seed(r)
        models.append(build_model(cfg.model, task.input_shape, 1, _factory(cfg)).to(device))
    stacked = stack_models(models)
    tasks = StackedTask([task] * runs, models)
    step = FunctionalStep(stacked, task, runs, models[0], functional=True, compiled=compiled)
    batch = next(iter(tasks.train_batches(0)))
    return runs * _rate(step, stacked, batch, steps, device)


def _agreement(cfg: Any, steps: int, device: torch.device) -> None:
    """Train the same float64 network ``steps`` Adam steps with each derivative mode and
    print both relative L2 errors along the way: exact derivatives train the same network
    until rounding (different summation orders) is amplified by the training itself."""
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(cfg.seed)
    start = build_model(cfg.model, (2,), 1, _factory(cfg)).to(device)
    errors: dict[str, list[float]] = {}
    every = max(1, steps // 8)
    for mode in ("autograd", "forward"):
        task = BurgersTask(cfg.dataset, cfg.task, device, mode)
        task.batch = tuple(t.double() for t in task.batch)
        task.xt_test, task.u_test = task.xt_test.double(), task.u_test.double()
        model = copy.deepcopy(start)
        step = FunctionalStep(model, task)
        optimizer = build_optimizer(model, cfg.optimizer)
        began = time.perf_counter()
        errors[mode] = []
        for done in range(1, steps + 1):
            optimizer.zero_grad(set_to_none=True)
            step(task.batch)
            optimizer.step()
            if done % every == 0 or done == steps:
                errors[mode].append(task.evaluate(model)["test_rel_l2"])
        seconds = time.perf_counter() - began
        print(f"{mode}: float64, {steps} Adam steps in {seconds:.0f} s")
    print(f"{'step':>6}{'rel L2 autograd':>18}{'rel L2 forward':>18}{'rel. difference':>18}")
    marks = [*range(every, steps + 1, every)]
    marks += [steps] if marks[-1] != steps else []
    for mark, a, f in zip(marks, errors["autograd"], errors["forward"], strict=True):
        print(f"{mark:>6}{a:>18.10f}{f:>18.10f}{abs(f - a) / a:>18.2e}")


def _factory(cfg: Any) -> Any:
    from adaptrun.activations import ActivationFactory

    return ActivationFactory(check_config(cfg).activation.config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per path")
    parser.add_argument("--runs", type=int, default=8, help="runs in the stacked row")
    parser.add_argument(
        "--peer", choices=["deepxde"], help="also time this library on the same problem"
    )
    parser.add_argument(
        "--agreement",
        type=int,
        metavar="STEPS",
        help="instead: train both derivative modes STEPS Adam steps in float64, compare",
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's allocator as it is (to measure what adaptrun.runner.allocator gains)",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. activation=layerwise")
    args = parser.parse_args()
    if args.peer and not deepxde_peer.available():
        parser.error("--peer deepxde needs DeepXDE: pip install deepxde")
    kept = not args.default_malloc and keep_freed_memory()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        overrides = ["experiment=jagtap_burgers", "activation=layerwise_slope", *args.overrides]
        cfg = compose("config", overrides)
    check_config(cfg)
    device = resolve_device(cfg.trainer.device)
    if args.agreement:
        _agreement(cfg, args.agreement, device)
        return
    autograd = BurgersTask(cfg.dataset, cfg.task, device, "autograd")
    forward = BurgersTask(cfg.dataset, cfg.task, device, "forward")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, autograd.input_shape, 1, _factory(cfg)).to(device)
    twins = [copy.deepcopy(model) for _ in range(2)]
    batch = next(iter(autograd.train_batches(0)))

    paths = {
        "autograd eager": (FunctionalStep(model, autograd), model),
        "forward eager": (FunctionalStep(twins[0], forward), twins[0]),
        "forward compiled": (
            FunctionalStep(twins[1], forward, functional=True, compiled=True),
            twins[1],
        ),
    }
    first = {name: _first_call(step, batch, device) for name, (step, _) in paths.items()}
    grads_match = all(
        torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6)
        for a, b in zip(model.parameters(), twins[0].parameters(), strict=True)
    )
    rates = {name: _rate(step, m, batch, args.steps, device) for name, (step, m) in paths.items()}
    stacked = {
        f"forward stacked, {args.runs} runs": _stacked_rate(
            cfg, forward, args.runs, args.steps, device
        ),
        f"forward stacked compiled, {args.runs}": _stacked_rate(
            cfg, forward, args.runs, args.steps, device, compiled=True
        ),
    }
    peer = deepxde_peer.deepxde_rate(cfg, batch, args.steps) if args.peer else None

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
    allocator = "freed memory kept" if kept else "default allocator"
    print(f"device: {name}; torch {torch.__version__}; {allocator}")
    print(
        f"network: {cfg.model.hidden_layers}x{cfg.model.width} {cfg.activation.base}, "
        f"{cfg.activation.variant} slopes; {cfg.dataset.n_collocation} collocation points"
    )
    print(f"first-step gradients of forward and autograd match: {grads_match}")
    vs_peer = f"{'vs DeepXDE':>12}" if peer else ""
    print(f"{'path':<30}{'first call (s)':>16}{'steps/s':>10}{'ratio':>8}{vs_peer}")
    base = rates["autograd eager"]

    def peer_ratio(rate: float) -> str:
        return f"{rate / peer[1]:>12.2f}" if peer else ""

    for path, rate in rates.items():
        print(
            f"{path:<30}{first[path][1]:>16.2f}{rate:>10.1f}{rate / base:>8.2f}{peer_ratio(rate)}"
        )
    for label, rate in stacked.items():
        print(
            f"{label:<30}{'':>16}{rate:>10.1f}{rate / base:>8.2f}{peer_ratio(rate)}"
            "  (runs x steps/s)"
        )
    if peer:
        label = f"DeepXDE {peer[0]} (autograd)"
        print(f"{label:<30}{'':>16}{peer[1]:>10.1f}{peer[1] / base:>8.2f}{peer_ratio(peer[1])}")


if __name__ == "__main__":
    main()
