"""The optimizer registry (adam and sgd here; MOLF registers itself in molf.py) and the
learning-rate schedules (constant, step, cosine)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from adaptrun.activations import Capabilities, activation_parameters
from adaptrun.core.errors import is_count, is_number, require
from adaptrun.core.registry import Registry
from adaptrun.core.schemas import check_section
from adaptrun.models.registry import ModelCapabilities
from adaptrun.tasks.registry import TaskCapabilities

SCHEDULES = ("constant", "step", "cosine")


@dataclasses.dataclass(frozen=True)
class OptimizerCapabilities:
    """What the runner may ask of an optimizer instead of its name."""

    learning_rate: bool = True  # optimizer.lr, weight decay and a schedule apply
    elementwise: bool = True  # each element's update is its own: stacked runs take it exactly
    owns_step: bool = False  # computes the whole step itself (MOLF): the loop runs its step
    # its update is linear in the rate and its weight decay a gradient term (L2): a stack's
    # runs may each take their own optimizer.lr and optimizer.weight_decay (run_rates.py)
    per_run_rates: bool = False


def _no_check(cfg: Mapping[str, Any]) -> None:
    return None


@dataclasses.dataclass(frozen=True)
class OptimizerEntry:
    """An ``optimizer`` option: its typed config, checks, capabilities and builder.

    ``fits``: the check of the model, task and activation it is asked to train;
    ``step``: with ``owns_step``, the step that replaces the loop's (model, task, cfg)."""

    name: str
    config: type
    build: Callable[[nn.Module, Mapping[str, Any]], torch.optim.Optimizer]
    capabilities: OptimizerCapabilities = OptimizerCapabilities()
    check: Callable[[Mapping[str, Any]], None] = _no_check
    fits: Callable[..., None] | None = None
    step: Callable[..., Any] | None = None


OPTIMIZERS: Registry[OptimizerEntry] = Registry("optimizer", "optimizer.name")


@dataclasses.dataclass
class ScheduledConfig:
    """The keys of a first-order optimizer: its rate, decay and schedule."""

    name: str = ""
    lr: Any = 0.001
    weight_decay: Any = 0.0
    schedule: Any = "constant"
    milestones: list[Any] = dataclasses.field(default_factory=list)
    gamma: Any = 0.1


@dataclasses.dataclass
class AdamConfig(ScheduledConfig):
    betas: list[Any] = dataclasses.field(default_factory=lambda: [0.9, 0.999])


@dataclasses.dataclass
class SGDConfig(ScheduledConfig):
    momentum: Any = 0.0
    nesterov: Any = False


def check_optimizer(cfg: Mapping[str, Any]) -> None:
    entry = OPTIMIZERS[cfg["name"]]
    check_section("optimizer", cfg, entry.config, f"optimizer {entry.name}")
    if entry.capabilities.learning_rate:
        _check_scheduled(cfg)
    entry.check(cfg)


def _check_scheduled(cfg: Mapping[str, Any]) -> None:
    """The rate, decay and schedule every optimizer with a learning rate has."""
    require(
        is_number(cfg["lr"]) and cfg["lr"] > 0,
        "optimizer.lr",
        f"must be a positive number (got {cfg['lr']!r})",
    )
    require(
        is_number(cfg["weight_decay"]) and cfg["weight_decay"] >= 0,
        "optimizer.weight_decay",
        f"must be >= 0 (got {cfg['weight_decay']!r})",
    )
    require(
        cfg["schedule"] in SCHEDULES,
        "optimizer.schedule",
        f"unknown schedule {cfg['schedule']!r}; valid: {', '.join(SCHEDULES)}",
    )
    milestones = list(cfg["milestones"])
    require(
        all(is_count(m) for m in milestones) and milestones == sorted(set(milestones)),
        "optimizer.milestones",
        f"must be increasing positive epoch numbers (got {milestones})",
    )
    require(
        is_number(cfg["gamma"]) and 0 < cfg["gamma"] <= 1,
        "optimizer.gamma",
        f"must be in (0, 1] (got {cfg['gamma']!r})",
    )


def _check_adam(cfg: Mapping[str, Any]) -> None:
    betas = list(cfg["betas"])
    require(
        len(betas) == 2 and all(is_number(b) and 0 <= b < 1 for b in betas),
        "optimizer.betas",
        f"must be two numbers in [0, 1) (got {betas})",
    )


def _check_sgd(cfg: Mapping[str, Any]) -> None:
    require(
        is_number(cfg["momentum"]) and 0 <= cfg["momentum"] < 1,
        "optimizer.momentum",
        f"must be in [0, 1) (got {cfg['momentum']!r})",
    )
    require(
        not cfg["nesterov"] or cfg["momentum"] > 0,
        "optimizer.nesterov",
        "needs optimizer.momentum > 0",
    )


def check_trainable(
    cfg: Mapping[str, Any],
    model: ModelCapabilities,
    task: TaskCapabilities,
    activation: Capabilities,
) -> None:
    """The optimizer's own check of what it is asked to train (MOLF trains only what
    declares the ``molf`` capability)."""
    fits = OPTIMIZERS[cfg["optimizer"]["name"]].fits
    if fits is not None:
        fits(cfg, model, task, activation)


def build_optimizer(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    return OPTIMIZERS[cfg["name"]].build(model, cfg)


def param_groups(model: nn.Module, cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Activation parameters get no weight decay (it would pull slopes towards zero);
    a transfer model's pretrained backbone gets ``model.backbone_lr_mult`` times the rate;
    frozen parameters are left out. The decayed groups say so (``decayed``), whatever
    their decay: a stack's runs may each take their own (run_rates.py)."""
    lr = float(cfg["lr"])
    exempt_ids = {id(p) for p in activation_parameters(model, exempt_only=True)}
    backbone: list[nn.Parameter] = getattr(model, "backbone_parameters", list)()  # transfer
    backbone_ids = {id(p) for p in backbone}
    trainable = [p for p in model.parameters() if p.requires_grad]
    decayed = [p for p in trainable if id(p) not in exempt_ids | backbone_ids]
    wd = float(cfg["weight_decay"])
    groups: list[dict[str, Any]] = [{"params": decayed, "weight_decay": wd, "decayed": True}]
    exempt = [p for p in trainable if id(p) in exempt_ids]
    if exempt:
        groups.append({"params": exempt, "weight_decay": 0.0})
    slow = [p for p in backbone if p.requires_grad]
    if slow:  # a pretrained backbone may learn slower than the new layers
        mult = float(getattr(model, "backbone_lr_mult", 1.0))
        groups.append({"params": slow, "weight_decay": wd, "lr": lr * mult, "decayed": True})
    return groups


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _adam(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    fused = fusable(_trainable(model))
    groups, lr = param_groups(model, cfg), float(cfg["lr"])
    return torch.optim.Adam(groups, lr=lr, betas=tuple(cfg["betas"]), fused=fused)


def _sgd(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    fused = fusable(_trainable(model))
    groups, lr = param_groups(model, cfg), float(cfg["lr"])
    momentum, nesterov = float(cfg["momentum"]), bool(cfg["nesterov"])
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, fused=fused)


RATES = OptimizerCapabilities(per_run_rates=True)
OPTIMIZERS.register(OptimizerEntry("adam", AdamConfig, _adam, RATES, check=_check_adam))
OPTIMIZERS.register(OptimizerEntry("sgd", SGDConfig, _sgd, RATES, check=_check_sgd))


def fusable(params: list[nn.Parameter]) -> bool:
    """Whether torch's fused optimizer kernels take these parameters: one kernel for all
    of them instead of about ten small ops per tensor, the same elementwise update. A
    small network's Adam step on a CPU: 228 us for-loop, 67 us fused (14 tensors)."""
    return bool(params) and all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params
    )


def lr_factor(cfg: Mapping[str, Any], step: int, steps_per_epoch: int, total_steps: int) -> float:
    """The multiplier on the base learning rate after ``step`` optimizer steps."""
    schedule = cfg.get("schedule", "constant")
    if schedule == "step":
        epoch = step // steps_per_epoch
        return float(cfg["gamma"]) ** sum(epoch >= m for m in cfg["milestones"])
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    return 1.0


def build_schedule(
    optimizer: torch.optim.Optimizer, cfg: Mapping[str, Any], steps_per_epoch: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step schedule, so it needs no epoch bookkeeping and resumes from a step count."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch, total_steps)
    )
