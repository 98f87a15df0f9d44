"""trainer.threads=auto against fixed thread counts, side by side in one run.

Rows: the default digits run (the whole command, its metrics.json's training seconds)
and one training step of a Fashion-MNIST-sized MLP (784 inputs, batch 128), each alone
and beside a competing busy process (one core spinning). Columns: 1 thread, every core
and auto, the repeats interleaved so that the machine's moments fall on all of them; the
last column is auto against the best of the three (target: at most 1.10).

    python scripts/bench_threads.py            # BENCHMARKS.md's table
    python scripts/bench_threads.py --quick    # one repeat, fewer steps: a check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from adaptrun.runner.threads import available_cores, choose_threads

TARGET = 1.10


@contextlib.contextmanager
def competing(busy: bool) -> Iterator[None]:
    """One other process keeping a core busy (or nothing)."""
    if not busy:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)  # let it show in /proc/stat
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def digits_run(threads: str) -> tuple[float, int]:
    """The default run's training seconds (metrics.json) and the threads it used."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "adaptrun", f"trainer.threads={threads}",
             f"hydra.run.dir={folder}"],
            check=True, capture_output=True, text=True, cwd=folder,
        )  # fmt: skip
        metrics = json.loads((Path(folder) / "metrics.json").read_text())
    return float(metrics["wall_seconds"]), int(metrics["threads"])


def mlp_step(steps: int) -> Callable[[str], tuple[float, int]]:
    """Seconds per training step of a 784-256-256-10 MLP (Adam, batch 128) on ``threads``;
    auto chooses as a run does, its probe the same model's step."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.randn(128, 784), torch.randint(0, 10, (128,))

    def one() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    def timed(threads: str) -> tuple[float, int]:
        count = choose_threads(threads, 1, one).count
        before = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            one()
            start = time.perf_counter()
            for _ in range(steps):
                one()
            return (time.perf_counter() - start) / steps, count
        finally:
            torch.set_num_threads(before)

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    repeats, steps = (1, 50) if args.quick else (3, 300)
    settings = ["1", str(available_cores()), "auto"]
    cases = {"default digits run (s)": digits_run, "784-256-256-10 MLP step (ms)": mlp_step(steps)}
    print(f"{available_cores()} cores; {repeats} interleaved repeats, the best of each kept\n")
    print("| case | load | 1 thread | all cores | auto (threads) | auto / best | target |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name, case in cases.items():
        for busy in (False, True):
            with competing(busy):
                best: dict[str, tuple[float, int]] = {}
                for _ in range(repeats):
                    for setting in settings:
                        seconds, used = case(setting)
                        if setting not in best or seconds < best[setting][0]:
                            best[setting] = (seconds, used)
            scale = 1000 if "ms" in name else 1
            one, every, (auto, used) = best["1"][0], best[settings[1]][0], best["auto"]
            ratio = auto / min(one, every)
            worst = max(worst, ratio)
            load = "1 core busy elsewhere" if busy else "idle"
            print(
                f"| {name} | {load} | {one * scale:.3g} | {every * scale:.3g} | "
                f"{auto * scale:.3g} ({used}) | {ratio:.2f} | <= {TARGET:.2f} |"
            )
    print(f"\nworst auto / best: {worst:.2f} ({'ok' if worst <= TARGET else 'above target'})")


if __name__ == "__main__":
    main()
