"""The headline throughput ratios, each measured side by side in one process on one
device: activation variants against fixed ReLU in the same network, the runner's epoch
against a bare loop (and a DataLoader + PIL pipeline), stacked against sequential runs.

``scripts/bench.py`` prints them all as BENCHMARKS.md; ``adaptrun-doctor`` runs a short
subset beside the targets. Ratios, not absolute numbers, are what compare across machines.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from PIL import Image
from torch import nn

from adaptrun.activations import (
    ActivationFactory,
    AdActConfig,
    APLConfig,
    FixedConfig,
    SlopeConfig,
    model_penalty,
)
from adaptrun.activations.fused import triton_usable
from adaptrun.config.options import config_dir
from adaptrun.data.augment import Augment
from adaptrun.data.images import ImageData, Split
from adaptrun.models import build_model
from adaptrun.records.board import Board
from adaptrun.records.checkpoint import Checkpoints, Position
from adaptrun.records.history import History
from adaptrun.records.progress import Progress
from adaptrun.records.track import Tracker
from adaptrun.tasks import ClassificationTask
from adaptrun.training.loop import Loop, train
from adaptrun.training.stacked import stack_models
from adaptrun.training.steps import FunctionalStep

VARIANTS: dict[str, tuple[type, dict[str, Any]]] = {  # name -> (family config, its fields)
    "relu (fixed)": (FixedConfig, {}),
    "layerwise slope": (SlopeConfig, {"variant": "layerwise"}),
    "neuronwise, per channel": (SlopeConfig, {"variant": "neuronwise", "granularity": "channel"}),
    "neuronwise, per element": (SlopeConfig, {"variant": "neuronwise", "granularity": "element"}),
    "adact (4 segments)": (AdActConfig, {"hinges": 5, "granularity": "channel"}),
    "apl (4 hinges)": (APLConfig, {"segments": 4, "granularity": "channel"}),
}
NETWORKS = {"3-VGG": "vgg3", "LeNet": "lenet", "PreActResNet18": "preact_resnet18", "MLP": "mlp"}
CIFAR = (3, 32, 32)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device, warmup: int, repeat: int) -> float:
    """Seconds per call, after warm-up calls (compilation, autotuning, caches)."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    sync(device)
    return (time.perf_counter() - start) / repeat


def model_config(name: str) -> dict:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("config", [f"model={name}"])
    return dict(cfg.model)


class Fast:
    """The trainer's CUDA fast paths, applied the same way to every row."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        if self.cuda:
            torch.backends.cudnn.benchmark = True

    def model(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.cuda else model

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, torch.bfloat16, enabled=self.cuda)


def train_step(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, fast: Fast
) -> None:
    opt.zero_grad(set_to_none=True)
    with fast.autocast():
        loss = F.cross_entropy(model(x), y) + model_penalty(model)
    loss.backward()
    opt.step()


@dataclasses.dataclass
class Sizes:
    """How big each measurement is: batch, timed repeats, images in the runner's epoch,
    DataLoader workers, stacked runs; ``small`` also leaves PreActResNet18 out."""

    batch: int
    repeat: int
    images: int
    workers: int
    runs: int
    small: bool = False
    networks: tuple[str, ...] = tuple(NETWORKS)


def activation_rows(args: Sizes, device: torch.device, fast: Fast) -> list[list]:
    """[network, activation, impl, images/s, ratio to fixed ReLU with the same impl]."""
    impls = ["torch"] + (["triton"] if device.type == "cuda" and triton_usable() else [])
    batch = args.batch
    x = torch.randn(batch, *CIFAR, device=device)
    if fast.cuda:
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    rows = []
    for net, model_name in NETWORKS.items():
        if net not in args.networks or (args.small and model_name == "preact_resnet18"):
            continue
        cfg = model_config(model_name)
        base_rate = {}
        for variant, (kind, fields) in VARIANTS.items():
            fixed = kind is FixedConfig
            for impl in ["torch"] if fixed else impls:
                torch.manual_seed(0)
                act = ActivationFactory(kind(**fields) if fixed else kind(**fields, impl=impl))
                model = fast.model(build_model(cfg, CIFAR, 10, act))
                opt = torch.optim.Adam(model.parameters(), 1e-3)
                one = functools.partial(train_step, model, opt, x, y, fast)
                seconds = timed(one, device, 3, args.repeat)
                rate = batch / seconds
                if fixed:
                    base_rate = {i: rate for i in impls}
                rows.append([net, variant, impl, f"{rate:,.0f}", f"{rate / base_rate[impl]:.2f}"])
    return rows


def synthetic_images(n: int, device: torch.device) -> ImageData:
    """n CIFAR-sized training images and a small test split (the final evaluation)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n + 256, *CIFAR), generator=gen, dtype=torch.uint8)
    y = torch.randint(0, 10, (n + 256,), generator=gen)
    train, test = Split(x[:n], y[:n]).to(device), Split(x[n:], y[n:]).to(device)
    return ImageData("synthetic", train, test, 10, (0.5,) * 3, (0.25,) * 3)


def runner_rows(args: Sizes, device: torch.device, fast: Fast) -> list[list]:
    """One epoch through the runner's loop against the same steps over ready tensors,
    then a DataLoader + PIL pipeline feeding the same model."""
    data = synthetic_images(args.images, device)
    ops = [{"op": "crop", "padding": 4}, {"op": "flip", "p": 0.5}]
    task = ClassificationTask(data, args.batch, 0, device, Augment(ops))
    spec = SlopeConfig(variant="neuronwise", granularity="channel")

    def fresh() -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = fast.model(build_model(model_config("vgg3"), CIFAR, 10, ActivationFactory(spec)))
        return model, torch.optim.Adam(model.parameters(), 1e-3)

    batches = list(task.train_batches(0))  # ready on the device: the bare loop's input

    def bare() -> None:
        model, opt = fresh()
        for x, y in batches:
            train_step(model, opt, x, y, fast)

    def runner() -> None:
        model, opt = fresh()
        schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        with tempfile.TemporaryDirectory() as folder:
            spe = task.steps_per_epoch
            board = Board(Path(folder))
            progress = Progress(spe, spe, enabled=False)
            tracker = Tracker(
                Path(folder), model, History(task.goals, spe), board, progress, 10, {}
            )
            saver = Checkpoints(Path(folder), {}, {"model": model, "optimizer": opt}, None, 0)
            loop = Loop(epochs=1, eval_every_epochs=0, precision="bf16" if fast.cuda else "fp32")
            step = FunctionalStep(model, task, precision=loop.precision)  # the runner's own step
            train(model, task, step, opt, schedule, tracker, loop, saver, Position())
            board.close()

    pil = PilDataset(data.train.x.cpu().numpy(), data.train.y.cpu().numpy())

    def dataloader() -> None:
        model, opt = fresh()
        loader = torch.utils.data.DataLoader(
            pil, args.batch, shuffle=True, num_workers=args.workers,
            pin_memory=fast.cuda, drop_last=False,
        )  # fmt: skip
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            if fast.cuda:
                x = x.to(memory_format=torch.channels_last)
            train_step(model, opt, x, y.to(device, non_blocking=True), fast)

    n = len(data.train)
    bare_s, runner_s, loader_s = (timed(f, device, 1, 1) for f in (bare, runner, dataloader))
    return [
        ["bare loop over ready batches", f"{n / bare_s:,.0f}", "1.00"],
        ["runner epoch (train loop, tracker, events)", f"{n / runner_s:,.0f}",
         f"{bare_s / runner_s:.2f}"],
        [f"DataLoader + PIL ({args.workers} workers)", f"{n / loader_s:,.0f}",
         f"{bare_s / loader_s:.2f}"],
    ]  # fmt: skip


class PilDataset(torch.utils.data.Dataset):
    """What a torchvision dataset does per sample: a PIL image through transforms."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        from torchvision import transforms

        self.images = [Image.fromarray(img.transpose(1, 2, 0)) for img in x]
        self.y = y
        self.transform = transforms.Compose(
            [
                transforms.RandomCrop(32, padding=4),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                transforms.Normalize((0.5,) * 3, (0.25,) * 3),
            ]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), int(self.y[i])


def stack_rows(args: Sizes, device: torch.device) -> list[list]:
    """R small-MLP runs (8x8 inputs, batch 64): one vmapped step against R steps."""
    runs, shape = args.runs, (1, 8, 8)
    cfg = model_config("mlp")
    spec = SlopeConfig(variant="neuronwise")
    models = []
    for r in range(runs):
        torch.manual_seed(r)
        models.append(build_model(cfg, shape, 10, ActivationFactory(spec)).to(device))
    x = torch.randn(runs, 64, *shape, device=device)
    y = torch.randint(0, 10, (runs, 64), device=device)
    opts = [torch.optim.Adam(m.parameters(), 1e-3) for m in models]

    def sequential() -> None:
        for r, (model, opt) in enumerate(zip(models, opts, strict=True)):
            opt.zero_grad(set_to_none=True)
            (F.cross_entropy(model(x[r]), y[r]) + model_penalty(model)).backward()
            opt.step()

    stacked = stack_models(models)
    stacked_opt = torch.optim.Adam(stacked.parameters(), 1e-3)
    step = FunctionalStep(stacked, _CrossEntropy(), runs=runs, template=models[0])

    def together() -> None:
        stacked_opt.zero_grad(set_to_none=True)
        step((x, y))
        stacked_opt.step()

    seq = timed(sequential, device, 3, args.repeat)
    stk = timed(together, device, 3, args.repeat)
    return [
        [f"{runs} runs one after another", f"{runs / seq:,.0f}", "1.00"],
        [f"{runs} runs stacked (trainer.stack={runs})", f"{runs / stk:,.0f}", f"{seq / stk:.2f}"],
    ]


class _CrossEntropy:
    """The classification loss alone, for the stacked step."""

    def loss(self, model: nn.Module, batch: tuple, functional: bool = False) -> torch.Tensor:
        return F.cross_entropy(model(batch[0]), batch[1])


def table(header: list[str], rows: list[list]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])
