"""``adaptrun-doctor``: may this machine be trusted with a sweep?

Run it on a cluster node before a big sweep. It prints the software and the device,
runs the self-check of every fused kernel configuration the device will use (the same
check a run does before its first use of one), then a short benchmark of the headline
ratios beside their targets. Exit status 1 if a kernel failed its self-check: runs on
this machine would fall back to the slower PyTorch reference for it (or stop, with
activation.impl=triton).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import os
import platform
import sys
import time
from typing import Any

import torch

from adaptrun.activations import ActivationFactory, AdActConfig, APLConfig, SlopeConfig, selfcheck
from adaptrun.activations.fused import BASE_CODES, triton_available, triton_usable
from adaptrun.core.errors import UserError
from adaptrun.runner.allocator import keep_freed_memory
from adaptrun.runner.threads import available_cores
from adaptrun.tools import benchmarks

# The configurations a run can meet: every kernel and base, per layer / channel / element,
# dense (flat) and conv (NCHW, channels-last) inputs, fp32 and bf16.
KERNELS = [
    *(
        SlopeConfig(variant=variant, base=base, granularity=granularity)
        for base in BASE_CODES
        for variant, granularity in (("layerwise", "element"), ("neuronwise", "channel"))
    ),
    SlopeConfig(variant="neuronwise", base="tanh", granularity="element"),
    AdActConfig(hinges=5, granularity="channel"),
    APLConfig(segments=4, granularity="channel"),
]
DTYPES = (torch.float32, torch.bfloat16)
FEATURES = (8, 5, 5)  # a small conv feature map; its flattening is the dense input

SIZES = {  # about 30-60 s each, 3-VGG only
    "cuda": benchmarks.Sizes(512, repeat=10, images=8192, workers=4, runs=32, networks=("3-VGG",)),
    "cpu": benchmarks.Sizes(32, repeat=10, images=1024, workers=0, runs=8, networks=("3-VGG",)),
}
RUNNER = "runner epoch (train loop, tracker, events)"  # benchmarks.runner_rows' row
# (figure, target ratio) per headline row; the targets hold on a CUDA GPU
TARGETS = {
    "layerwise slope": 0.95,
    "neuronwise, per channel": 0.95,
    "neuronwise, per element": 0.95,
    "adact (4 segments)": 0.85,
    "apl (4 hinges)": 0.85,
    RUNNER: 0.9,
    "stacked": 15.0,
}


def environment(device: torch.device) -> list[tuple[str, str]]:
    """(what, version or description) of everything a run's numbers depend on."""
    triton = importlib.metadata.version("triton") if triton_available() else "not installed"
    rows = [
        ("adaptrun", importlib.metadata.version("adaptrun")),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("CUDA (torch build)", torch.version.cuda or "none"),
        ("triton", triton),
        ("hydra", importlib.metadata.version("hydra-core")),
    ]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        rows.append(("device", f"{props.name}, {props.total_memory / 2**30:.1f} GiB"))
    else:
        rows.append(("device", "CPU only: no CUDA device is visible"))
    cpu = platform.processor() or platform.machine()
    rows.append(
        (
            "CPU",
            f"{cpu}, {available_cores()} cores here, torch uses {torch.get_num_threads()} threads",
        )
    )
    return rows


def _inputs(device: torch.device, dtype: torch.dtype) -> list[tuple[tuple, torch.Tensor]]:
    """(unit shape, input) pairs covering the layouts the config's kernel views."""
    conv = torch.randn(4, *FEATURES, device=device, dtype=dtype)
    dense = torch.randn(4, FEATURES[0] * 3, device=device, dtype=dtype)
    return [
        (FEATURES, conv),
        (FEATURES, conv.to(memory_format=torch.channels_last)),
        (dense.shape[1:], dense),
    ]


def kernel_checks(device: torch.device) -> dict[str, str | None]:
    """Every configuration's verdict: None (passed) or why it failed."""
    for config in KERNELS:
        for dtype in DTYPES:
            for units, x in _inputs(device, dtype):
                module = ActivationFactory(_explicit(config))(tuple(units)).to(device)
                # as in a run: bf16 activations come from layers under autocast
                bf16 = torch.autocast(device.type, torch.bfloat16, enabled=dtype != torch.float32)
                with contextlib.suppress(UserError), bf16:  # the verdict is kept in VERDICTS
                    module(x)
    return dict(selfcheck.VERDICTS)


def _explicit(config: Any) -> Any:
    """The config with impl=triton: the kernels whatever the device, failures raised."""
    return dataclasses.replace(config, impl="triton")


def headline(device: torch.device) -> list[list[str]]:
    """[figure, measured ratio, target, verdict]: a short run of scripts/bench.py's
    measurements (3-VGG only, fewer repeats)."""
    cuda = device.type == "cuda"
    sizes = SIZES[device.type]
    fast = benchmarks.Fast(device)
    impl = "triton" if cuda and triton_usable() else "torch"
    measured = {
        row[1]: float(row[4])
        for row in benchmarks.activation_rows(sizes, device, fast)
        if row[2] == impl and row[1] != "relu (fixed)"
    }
    for row in benchmarks.runner_rows(sizes, device, fast)[1:2]:
        measured[row[0]] = float(row[2])
    stacked = benchmarks.stack_rows(sizes, device)[1]
    measured["stacked"] = float(stacked[2])
    labels = {
        RUNNER: "runner epoch vs bare loop",
        "stacked": f"{sizes.runs} stacked MLP runs vs sequential",
    }
    rows = []
    for figure, ratio in measured.items():
        target = TARGETS[figure]
        label = labels.get(figure, f"{figure} vs fixed ReLU (3-VGG, {impl})")
        verdict = ("ok" if ratio >= target else "below target") if cuda else "CUDA target"
        rows.append([label, f"{ratio:.2f}x", f">= {target:g}x", verdict])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adaptrun-doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--no-bench", action="store_true", help="skip the 30-60 s benchmark")
    args = parser.parse_args(argv)
    keep_freed_memory()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(benchmarks.table(["", "version"], [list(r) for r in environment(device)]))
    interpreted = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    failed = 0
    print()
    if not triton_usable():
        why = "Triton is not installed" if not triton_available() else "no CUDA device"
        print(
            f"Kernel self-checks: skipped ({why}): runs here use the PyTorch reference "
            "(activation.impl=auto), which needs no check."
        )
    else:
        start = time.perf_counter()
        verdicts = kernel_checks(device)
        failed = sum(v is not None for v in verdicts.values())
        where = " through Triton's interpreter" if interpreted and device.type == "cpu" else ""
        print(
            f"Kernel self-checks{where}: {len(verdicts) - failed} of {len(verdicts)} "
            f"configurations passed ({time.perf_counter() - start:.1f} s)."
        )
        rows = [[name, "FAILED: " + why] for name, why in verdicts.items() if why is not None]
        if rows:
            print(benchmarks.table(["configuration", "self-check"], rows))
            print("Runs fall back to the PyTorch reference for these (activation.impl=auto).")
    if not args.no_bench:
        print()
        where = "CUDA" if device.type == "cuda" else "CPU: the targets are for a CUDA GPU"
        print(f"Headline ratios ({where}), measured side by side:")
        start = time.perf_counter()
        print(benchmarks.table(["figure", "measured", "target", ""], headline(device)))
        print(f"({time.perf_counter() - start:.0f} s; the full set: python scripts/bench.py)")
    return 1 if failed else 0


def run() -> None:
    """The console script."""
    sys.exit(main())
