"""Step rate of the Burgers preset: eager reference vs the compiled functional step.

    python scripts/bench_pinn.py                  # the preset on the current device
    python scripts/bench_pinn.py --steps 50 activation=neuronwise_slope model.hidden_layers=8

Both steps run side by side in one process on the same network, points and device.
Their first calls (the compiled one includes compilation) are timed apart and their
gradients compared; the rates are measured after a warm-up. Extra arguments are config
overrides on top of experiment=jagtap_burgers.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

import torch
from hydra import compose, initialize_config_dir

from adaptrun.cli import config_dir
from adaptrun.config_check import check_config
from adaptrun.models import build_model
from adaptrun.run import resolve_device
from adaptrun.steps import compiled_functional_step, eager_step


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per path")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. activation=layerwise")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        overrides = ["experiment=jagtap_burgers", "activation=layerwise_slope", *args.overrides]
        cfg = compose("config", overrides)
    checked = check_config(cfg)
    device = resolve_device(cfg.trainer.device)
    task = checked.task.build(cfg, device)
    torch.manual_seed(cfg.seed)
    act = checked.activation
    model = build_model(cfg.model, task.input_shape, task.num_outputs, act).to(device)
    twin = copy.deepcopy(model)
    batch = next(iter(task.train_batches(0)))

    eager, fast = eager_step(model, task), compiled_functional_step(twin, task)
    eager_loss, eager_first = _first_call(eager, batch, device)
    fast_loss, fast_first = _first_call(fast, batch, device)  # includes compilation
    grads_match = all(
        torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-6)
        for a, b in zip(model.parameters(), twin.parameters(), strict=True)
    )
    eager_rate = _rate(eager, model, batch, args.steps, device)
    fast_rate = _rate(fast, twin, batch, args.steps, device)

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}")
    print(
        f"network: {cfg.model.hidden_layers}x{cfg.model.width} {cfg.activation.base}, "
        f"{cfg.activation.variant} slopes; {cfg.dataset.n_collocation} collocation points"
    )
    print(
        f"first-step loss: eager {eager_loss:.6g}, compiled {fast_loss:.6g}; "
        f"gradients match: {grads_match}"
    )
    print(f"{'path':<22}{'first call (s)':>16}{'steps/s':>10}{'ratio':>8}")
    print(f"{'eager (reference)':<22}{eager_first:>16.2f}{eager_rate:>10.1f}{1.0:>8.2f}")
    ratio = fast_rate / eager_rate
    print(f"{'compiled torch.func':<22}{fast_first:>16.2f}{fast_rate:>10.1f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
