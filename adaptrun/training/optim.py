"""Optimizers (sgd, adam) and learning-rate schedules (constant, step, cosine)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from adaptrun.activations import Capabilities, activation_parameters
from adaptrun.core.errors import is_count, is_number, require
from adaptrun.core.schemas import check_section
from adaptrun.models.registry import ModelCapabilities
from adaptrun.tasks.registry import TaskCapabilities
from adaptrun.training.molf import Passive

OPTIMIZERS = ("sgd", "adam", "molf")
SCHEDULES = ("constant", "step", "cosine")


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


@dataclasses.dataclass
class MolfConfig:
    name: str = "molf"
    lr: Any = 0.0
    owo: Any = "mse"
    newton_steps: Any = 3
    l2: Any = 0.001
    tol: Any = 1e-10


SCHEMAS: dict[str, type] = {"adam": AdamConfig, "sgd": SGDConfig, "molf": MolfConfig}


def check_optimizer(cfg: Mapping[str, Any]) -> None:
    require(
        cfg["name"] in OPTIMIZERS,
        "optimizer.name",
        f"unknown optimizer {cfg['name']!r}; valid: {', '.join(OPTIMIZERS)}",
    )
    check_section("optimizer", cfg, SCHEMAS[cfg["name"]], f"optimizer {cfg['name']}")
    if cfg["name"] == "molf":
        require(
            cfg["owo"] in ("mse", "newton"),
            "optimizer.owo",
            f"unknown output-weight solver {cfg['owo']!r}; valid: mse, newton",
        )
        steps = cfg["newton_steps"]
        require(
            is_count(steps),
            "optimizer.newton_steps",
            "must be an integer >= 1",
        )
        require(is_number(cfg["l2"]) and cfg["l2"] > 0, "optimizer.l2", "must be > 0")
        require(is_number(cfg["tol"]) and cfg["tol"] > 0, "optimizer.tol", "must be > 0")
        return
    require(
        is_number(cfg["lr"]) and cfg["lr"] > 0,
        "optimizer.lr",
        f"must be a positive number (got {cfg['lr']!r})",
    )
    if "betas" in cfg:
        betas = list(cfg["betas"])
        require(
            len(betas) == 2 and all(is_number(b) and 0 <= b < 1 for b in betas),
            "optimizer.betas",
            f"must be two numbers in [0, 1) (got {betas})",
        )
    require(
        is_number(cfg["weight_decay"]) and cfg["weight_decay"] >= 0,
        "optimizer.weight_decay",
        f"must be >= 0 (got {cfg['weight_decay']!r})",
    )
    if cfg["name"] == "sgd":
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


def check_trainable(
    cfg: Mapping[str, Any],
    model: ModelCapabilities,
    task: TaskCapabilities,
    activation: Capabilities,
) -> None:
    """optimizer=molf trains only what declares the ``molf`` capability: a one-hidden-layer
    model with bypass weights, class targets, and activations it has a step for."""
    if cfg["optimizer"]["name"] != "molf":
        return
    require(
        model.molf,
        "model",
        f"optimizer=molf trains model=mlp1 (got model={cfg['model']['name']})",
    )
    require(task.molf, "task", f"optimizer=molf is for classification, not {cfg['task']['name']}")
    require(
        activation.molf,
        "activation",
        f"optimizer=molf trains fixed activations and adact, not {cfg['activation']['name']}",
    )


def build_optimizer(model: nn.Module, cfg: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Activation parameters get no weight decay (it would pull slopes towards zero);
    a transfer model's pretrained backbone gets ``model.backbone_lr_mult`` times the rate;
    frozen parameters are left out."""
    if cfg["name"] == "molf":
        return Passive(model.parameters())  # molf.molf_iteration sets the weights
    lr = float(cfg["lr"])
    exempt_ids = {id(p) for p in activation_parameters(model, exempt_only=True)}
    backbone = getattr(model, "backbone_parameters", list)()  # transfer models only
    backbone_ids = {id(p) for p in backbone}
    trainable = [p for p in model.parameters() if p.requires_grad]
    decayed = [p for p in trainable if id(p) not in exempt_ids | backbone_ids]
    groups = [{"params": decayed, "weight_decay": float(cfg["weight_decay"])}]
    exempt = [p for p in trainable if id(p) in exempt_ids]
    if exempt:
        groups.append({"params": exempt, "weight_decay": 0.0})
    slow = [p for p in backbone if p.requires_grad]
    if slow:  # a pretrained backbone may learn slower than the new layers
        mult = float(getattr(model, "backbone_lr_mult", 1.0))
        groups.append({"params": slow, "weight_decay": float(cfg["weight_decay"]), "lr": lr * mult})
    fused = fusable(trainable)
    if cfg["name"] == "sgd":
        momentum, nesterov = float(cfg["momentum"]), bool(cfg["nesterov"])
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov, fused=fused)
    return torch.optim.Adam(groups, lr=lr, betas=tuple(cfg["betas"]), fused=fused)


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
