"""Throughput ratios, measured side by side in one run on one device.

    python scripts/bench.py                 # full: CIFAR-sized batches, on CUDA if present
    python scripts/bench.py --small         # a CPU-sized run, under a minute
    python scripts/bench.py --write BENCHMARKS.md

Prints (and with --write, writes with the device and this command):
1. training throughput of each activation variant relative to fixed ReLU in the same
   network (3-VGG CNN, LeNet, PreActResNet18, MLP), for the torch and Triton kernels;
2. the runner's epoch (batches, augmentation, tracker, TensorBoard) relative to a bare
   compute loop over tensors already on the device;
3. a torchvision DataLoader + PIL pipeline's throughput against the runner's;
4. stacked runs (trainer.stack) against the same runs one after another.
Every row of a section is measured in the same process, one after another
(the measurements live in adaptrun.tools.benchmarks; adaptrun-doctor runs a short subset).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
from pathlib import Path

import torch

from adaptrun.runner.allocator import keep_freed_memory
from adaptrun.tools.benchmarks import Fast, Sizes, activation_rows, runner_rows, stack_rows, table

TARGETS = (
    "Targets on a CUDA GPU: per-channel and per-element slopes >= 0.95x fixed ReLU, "
    "adact / apl >= 0.85x, the runner's epoch >= 0.9x the bare loop, 32 stacked "
    "small-MLP runs >= 15x sequential."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a CPU-sized run (< 1 minute)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--write", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    keep_freed_memory()  # as every adaptrun run does
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if args.device == "auto" else args.device)
    if args.small:
        sizes = Sizes(batch=32, repeat=5, images=512, workers=2, runs=8, small=True)
    else:
        sizes = Sizes(batch=512, repeat=20, images=16384, workers=8, runs=32)
    fast = Fast(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    sections = [
        f"Device: {device.type} ({name or platform.machine()}), torch {torch.__version__}, "
        f"{datetime.date.today()}. Command: `python scripts/bench.py {' '.join(sys.argv[1:])}`"
        f"{'' if fast.cuda else ' (CPU: no bf16, no channels-last, no Triton kernels)'}.",
        TARGETS + ("" if fast.cuda else " **Not measured by this run: it ran on a CPU.**"),
        "## Activations: training throughput relative to fixed ReLU in the same network\n\n"
        f"Batch {sizes.batch} of 3x32x32, forward + backward + Adam step.\n\n"
        + table(
            ["network", "activation", "impl", "images/s", "vs relu"],
            activation_rows(sizes, device, fast),
        ),
        "## The runner's epoch against a bare loop, and a DataLoader + PIL pipeline\n\n"
        f"{sizes.images} images, 3-VGG with per-channel slopes, batch {sizes.batch}.\n\n"
        + table(["pipeline", "images/s", "vs bare loop"], runner_rows(sizes, device, fast)),
        "## Stacked runs against sequential runs\n\n"
        "MLP (2 x 64, per-neuron slopes) on 8x8 inputs, batch 64 per run, one Adam step.\n\n"
        + table(["runs", "runs x steps/s", "vs sequential"], stack_rows(sizes, device)),
    ]
    text = "# Benchmarks\n\n" + "\n\n".join(sections) + "\n"
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
