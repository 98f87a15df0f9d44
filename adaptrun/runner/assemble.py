"""A run's pieces from its config: task, model, the step and optimizer the loop drives.

One place, so that what the report's side-by-side cost measurement (``adaptrun-report
--cost``) times is the step a run of that config trains with.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import logging
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from adaptrun.activations import ActivationFactory, activation_parameters
from adaptrun.config.check import Checked, check_config
from adaptrun.models import build_model
from adaptrun.tasks import Task
from adaptrun.training import fastpaths
from adaptrun.training.loop import Loop
from adaptrun.training.optim import build_optimizer
from adaptrun.training.steps import Step, build_step, resolve_compile

log = logging.getLogger(__name__)
MATCHED = "adaptrun_matched"  # on a model bench.match resized: the width it has


def resolve_device(choice: str) -> torch.device:
    """``auto`` picks CUDA when present; check_config has refused cuda without a GPU."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_run(
    cfg: DictConfig, checked: Checked, device: torch.device, first: Task | None = None
) -> tuple[Task, torch.nn.Module]:
    """A run's task and model, seeded by its seed. ``first``: the task of the first run of
    a stack, whose data this run shares with its own batch order and draw."""
    seed_everything(cfg.seed)
    # each run's own factory (its own shared slope; its n, its recovery weight)
    factory = ActivationFactory(checked.activation.config)
    task = first.with_seed(cfg.seed) if first is not None else checked.task.build(cfg, device)
    model_cfg: Any = cfg.model
    if (cfg.get("bench") or {}).get("match") == "params":
        with torch.random.fork_rng(devices=[]):  # the search's draws leave no trace: the
            model_cfg = matched(cfg, checked, task)  # model is a run of that width's
    model = build_model(model_cfg, task.input_shape, task.num_outputs, factory).to(device)
    if model_cfg is not cfg.model:  # what really ran, for the run's hparams
        key = str(checked.model.width)
        setattr(model, MATCHED, {f"model.{key}": int(model_cfg[key])})
    return task, model


def matched(cfg: DictConfig, checked: Checked, task: Task) -> Any:
    """The model config with its width (the key its capabilities name) lowered until its
    trainable parameters do not exceed the fixed network's at the configured width: the
    same model without the activation's parameters. Parameter counts grow with the width,
    so a bisection finds the widest that fits; logged, and in metrics.json."""
    key = str(checked.model.width)

    def counts(width: int) -> tuple[int, int]:
        sized: Any = OmegaConf.merge(cfg.model, {key: width})
        factory = ActivationFactory(checked.activation.config)
        model = build_model(sized, task.input_shape, task.num_outputs, factory)
        trainable = [p for p in model.parameters() if p.requires_grad]
        own = {id(p) for p in activation_parameters(model)}
        return sum(p.numel() for p in trainable), sum(p.numel() for p in trainable if id(p) in own)

    configured = int(cfg.model[key])
    total, own = counts(configured)
    budget = total - own  # the fixed network's: its weights alone
    low, high = 1, configured
    while low < high:  # the widest width whose total fits the budget
        mid = (low + high + 1) // 2
        if counts(mid)[0] <= budget:
            low = mid
        else:
            high = mid - 1
    log.info(
        "bench.match=params: model.%s %d -> %d (%d trainable parameters; the fixed network's %d)",
        key, configured, low, counts(low)[0], budget,
    )  # fmt: skip
    return OmegaConf.merge(cfg.model, {key: low})


def run_step(
    cfg: DictConfig,
    checked: Checked,
    model: torch.nn.Module,
    task: Task,
    precision: str,
    runs: int | None = None,
    template: torch.nn.Module | None = None,
) -> tuple[Step, bool]:
    """The step a run of this config trains with, and whether trainer.compile resolved to
    compiled: the runner's and the report's cost measurement's one way to build it."""
    device = next(model.parameters()).device
    functional = checked.task.capabilities.functional_loss
    compiled = resolve_compile(cfg.trainer.compile, task, device, functional)
    step = build_step(model, task, compiled, precision, cfg.optimizer, functional, runs, template)
    return step, compiled


def timed_step(cfg: DictConfig) -> tuple[Callable[[], None], str]:
    """One training step of this config as its run takes it (fast paths, compile setting,
    optimizer), over its own batches in turn, and the device it runs on: what the report
    times side by side."""
    checked = check_config(cfg)
    device = resolve_device(cfg.trainer.device)
    task, model = build_run(cfg, checked, device)
    caps = checked.task.capabilities
    fast = fastpaths.resolve(cfg.trainer, device, caps.images)
    model = fastpaths.apply(fast, model, task, device)
    loop = dataclasses.replace(Loop.from_config(cfg.trainer), precision=fast.precision)
    optimizer = build_optimizer(model, cfg.optimizer)
    step, _ = run_step(cfg, checked, model, task, loop.precision)
    batches = itertools.cycle(list(itertools.islice(task.train_batches(0), 8)))

    def one() -> Any:
        optimizer.zero_grad(set_to_none=True)
        step(next(batches))
        optimizer.step()

    return one, device.type


def training_flops(model: torch.nn.Module, task: Any) -> int | None:
    """Floating-point operations of one training step (forward and backward on the first
    batch) of a copy of the model, as torch.utils.flop_counter counts them: matrix
    products and convolutions, not elementwise work (an activation's own arithmetic shows
    in its measured time, not here). The global generators are untouched; None where the
    count fails (it never fails a run)."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        twin = copy.deepcopy(model)
        batch = next(iter(task.train_batches(0)))
        with torch.random.fork_rng(devices=[]), FlopCounterMode(display=False) as counter:
            task.loss(twin, batch).backward()
        return int(counter.get_total_flops())
    except Exception as exc:  # a model or task the counter cannot follow
        log.debug("the FLOPs of a step could not be counted: %s", exc)
        return None
