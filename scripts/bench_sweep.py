"""The whole-sweep benchmark: ``hydra/sweeper=stacked`` against the basic sweeper on the
discontinuous-function comparison, whole command against whole command, then the floor.

The floor is the training steps alone, measured in this process: each activation's
unstacked step (as the basic sweeper's runs take it) times its runs, against its stacked
step times its stacks. No saving in the sweepers' other work (composing, evaluation,
figures, records) can take the stacked sweep below its steps, so ``basic whole / stacked
steps`` bounds the ratio any stacking sweeper can reach on this machine.

    python scripts/bench_sweep.py                 # the BENCHMARKS.md sweep (60 runs)
    python scripts/bench_sweep.py --small         # a quick check of the script
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from adaptrun.activations import ActivationFactory
from adaptrun.config.check import check_config
from adaptrun.config.options import config_dir
from adaptrun.models import build_model
from adaptrun.runner.allocator import keep_freed_memory
from adaptrun.runner.assemble import seed_everything
from adaptrun.runner.threads import resolve_threads
from adaptrun.training.optim import build_optimizer
from adaptrun.training.stacked import StackedTask, stack_models
from adaptrun.training.steps import FunctionalStep

ACTIVATIONS = ["tanh", "global_slope", "layerwise_slope", "neuronwise_slope"]


def grid(activations: list[str], ns: list[str], seeds: int, epochs: int) -> list[str]:
    return [
        "experiment=jagtap_discontinuous",
        f"activation={','.join(activations)}",
        f"activation.n={','.join(ns)}",
        f"seed={','.join(map(str, range(seeds)))}",
        f"trainer.epochs={epochs}",
    ]


def timed_sweep(args: list[str], stacked: bool, folder: Path) -> float:
    """Wall seconds of the whole ``adaptrun -m`` command, as a user runs it."""
    sweeper = ["hydra/sweeper=stacked"] if stacked else []
    command = [sys.executable, "-m", "adaptrun", "-m", *sweeper, *args]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, f"hydra.sweep.dir={folder}"], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench_sweep: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def step_seconds(
    activation: str, ns: list[str], seeds: int, steps: int, compiled: bool = False
) -> dict[str, float]:
    """Seconds per step of one unstacked run (``one``) and of the stack of all (n, seed)
    runs (``stacked``); with ``compiled``, of that stack compiled too, and the seconds
    of its first call (``compile``: the compile, cold unless inductor's cache has it)."""
    tasks, models = [], []
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        for n in ns:
            for seed in range(seeds):
                overrides = ["experiment=jagtap_discontinuous", f"activation={activation}"]
                cfg = compose("config", [*overrides, f"activation.n={n}", f"seed={seed}"])
                checked = check_config(cfg)
                seed_everything(seed)
                task = tasks[0] if tasks else checked.task.build(cfg, torch.device("cpu"))
                factory = ActivationFactory(checked.activation.config)
                tasks.append(task)
                models.append(build_model(cfg.model, task.input_shape, 1, factory))
    functional = checked.task.capabilities.functional_loss
    stack_task = StackedTask(tasks, models)
    batch, stacked_batch = next(tasks[0].train_batches(0)), next(stack_task.train_batches(0))
    paths = {"one": (FunctionalStep(models[0], tasks[0]), models[0], batch)}
    for name, compile_it in [("stacked", False), ("stacked compiled", True)][: 1 + compiled]:
        stacked = stack_models(models)
        step = FunctionalStep(
            stacked, tasks[0], len(models), models[0], functional=functional, compiled=compile_it
        )
        paths[name] = (step, stacked, stacked_batch)
    optimizers = {name: build_optimizer(m, cfg.optimizer) for name, (_, m, _) in paths.items()}
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    first = {}
    for _ in range(3):  # interleaved, so all see the same machine
        for name, (step, _, data) in paths.items():
            start = time.perf_counter()
            step(data)
            first.setdefault(name, time.perf_counter() - start)
            for _ in range(4):
                step(data)
            optimizer = optimizers[name]
            start = time.perf_counter()
            for _ in range(steps):
                optimizer.zero_grad(set_to_none=True)
                step(data)
                optimizer.step()
            seconds[name].append((time.perf_counter() - start) / steps)
    result = {name: statistics.median(values) for name, values in seconds.items()}
    if compiled:
        result["compile"] = first["stacked compiled"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="one activation, n=1,5, 2 seeds")
    parser.add_argument("--timing-steps", type=int, default=200)
    parser.add_argument(
        "--compiled", action="store_true", help="also time the stacks compiled (trainer.compile)"
    )
    args = parser.parse_args()
    activations, ns, seeds, epochs = ACTIVATIONS, ["1", "5", "10"], args.seeds, args.epochs
    if args.small:
        activations, ns, seeds, epochs = ACTIVATIONS[1:2], ["1", "5"], 2, 20
    if len(ns) * seeds > 16:
        parser.error("--seeds: at most 5, so that each activation's runs are one stack")
    sweep = grid(activations, ns, seeds, epochs)
    with tempfile.TemporaryDirectory() as tmp:
        stacked_wall = timed_sweep(sweep, True, Path(tmp) / "stacked")
        basic_wall = timed_sweep(sweep, False, Path(tmp) / "basic")
    torch.set_num_threads(resolve_threads("auto"))  # as each sweep's runs take them
    keep_freed_memory()
    runs_per_activation = len(ns) * seeds
    basic_steps = stacked_steps = compiled_steps = compile_seconds = 0.0
    for activation in activations:
        times = step_seconds(activation, ns, seeds, args.timing_steps, args.compiled)
        basic_steps += runs_per_activation * epochs * times["one"]
        stacked_steps += epochs * times["stacked"]  # one stack per activation
        if args.compiled:
            compiled_steps += epochs * times["stacked compiled"]
            compile_seconds += times["compile"]
    runs = len(activations) * runs_per_activation
    print(f"{runs} runs: {' '.join(sweep)}  ({torch.get_num_threads()} threads)\n")
    print("| | basic (s) | stacked (s) | ratio |\n|---|---|---|---|")
    print(
        f"| whole sweep | {basic_wall:.1f} | {stacked_wall:.1f} | {basic_wall / stacked_wall:.2f} |"
    )
    print(
        f"| training steps alone | {basic_steps:.2f} | {stacked_steps:.2f} | "
        f"{basic_steps / stacked_steps:.2f} |"
    )
    if args.compiled:
        with_compile = compiled_steps + compile_seconds
        print(
            f"| training steps alone, stacks compiled (+ {compile_seconds:.1f} s of first "
            f"calls) | {basic_steps:.2f} | {with_compile:.2f} | {basic_steps / with_compile:.2f} |"
        )
    print(f"\nceiling (basic whole sweep / stacked steps alone): {basic_wall / stacked_steps:.2f}x")
    if args.compiled:
        print(f"ceiling, stacks compiled: {basic_wall / with_compile:.2f}x")


if __name__ == "__main__":
    main()
