"""Config-only checks that run before any data is loaded, each error naming its key.

Each part of the config is checked by its registry entry; this module adds the rules
between parts, asking the entries' capabilities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from adaptrun.activations import ActivationFactory, Capabilities
from adaptrun.activations.family import require as require_activation
from adaptrun.activations.fused import triton_usable
from adaptrun.config.plan import PLAN_KEY, key_of
from adaptrun.core.errors import is_count, is_number, require
from adaptrun.core.schemas import check_root, check_section
from adaptrun.data import DATASETS
from adaptrun.data.augment import check_augmentation
from adaptrun.models import MODELS, ModelCapabilities, check_model
from adaptrun.tasks import TASKS, TaskEntry, check_task
from adaptrun.tasks.registry import TaskCapabilities
from adaptrun.training.fastpaths import PRECISIONS
from adaptrun.training.optim import OPTIMIZERS, check_optimizer, check_trainable

DEVICES = ("auto", "cpu", "cuda")


@dataclasses.dataclass(frozen=True)
class Checked:
    """What the checks found out, for the run to build from."""

    task: TaskEntry
    model: ModelCapabilities
    activation: ActivationFactory


def check_activation(cfg: Mapping[str, Any], task: TaskEntry) -> ActivationFactory:
    """The activation factory, with ``impl: auto`` resolved to the PyTorch modules for
    tasks that differentiate the network twice (the fused kernels' backward is not itself
    differentiable)."""
    factory = ActivationFactory(cfg)
    if not factory.capabilities.fused_kernel:
        return factory
    impl = factory.config.impl
    require_activation(
        impl != "triton" or triton_usable(),
        "impl",
        "triton needs a CUDA GPU with Triton installed; use auto (Triton on CUDA, "
        "PyTorch elsewhere) or torch",
    )
    if task.capabilities.input_derivatives:
        require_activation(
            impl != "triton",
            "impl",
            f"the {task.name} task differentiates the network twice, which the fused kernels "
            "cannot; use auto (which picks torch here) or torch",
        )
        factory.config = dataclasses.replace(factory.config, impl="torch")
    return factory


def check_trainer(cfg: Mapping[str, Any], full_batch: bool) -> None:
    for key in ("epochs", "batch_size", "log_every"):
        require(
            is_count(cfg[key]),
            f"trainer.{key}",
            f"must be an integer >= 1 (got {cfg[key]!r})",
        )
    for key in ("max_steps", "eval_every", "checkpoint_every"):
        require(
            cfg[key] is None or is_count(cfg[key]),
            f"trainer.{key}",
            f"must be null or an integer >= 1 (got {cfg[key]!r})",
        )
    require(
        cfg["device"] in DEVICES,
        "trainer.device",
        f"unknown device {cfg['device']!r}; valid: {', '.join(DEVICES)}",
    )
    require(
        cfg["device"] != "cuda" or torch.cuda.is_available(),
        "trainer.device",
        "cuda was asked for but no CUDA device is available; "
        "use trainer.device=auto or trainer.device=cpu",
    )
    require(
        cfg["precision"] in PRECISIONS,
        "trainer.precision",
        f"unknown precision {cfg['precision']!r}; valid: {', '.join(PRECISIONS)}",
    )
    require(
        cfg["compile"] == "auto" or isinstance(cfg["compile"], bool),
        "trainer.compile",
        f"must be auto, true or false (got {cfg['compile']!r})",
    )
    require(
        cfg["threads"] == "auto" or is_count(cfg["threads"]),
        "trainer.threads",
        f"must be auto or an integer >= 1 (got {cfg['threads']!r})",
    )
    require(
        cfg["channels_last"] == "auto" or isinstance(cfg["channels_last"], bool),
        "trainer.channels_last",
        f"must be auto, true or false (got {cfg['channels_last']!r})",
    )
    for key in ("eval_every_epochs", "lbfgs_steps", "checkpoint_every_epochs"):
        value = cfg[key]
        require(
            is_count(value, 0),
            f"trainer.{key}",
            f"must be an integer >= 0 (got {value!r})",
        )
    require(
        full_batch or cfg["lbfgs_steps"] == 0,
        "trainer.lbfgs_steps",
        "L-BFGS needs a full-batch task (function or burgers); use 0 for this task",
    )
    steps = list(cfg["figures_at"])
    require(
        all(is_count(s) for s in steps),
        "trainer.figures_at",
        f"must be a list of step numbers >= 1 (got {steps})",
    )
    for key in ("test", "figures"):
        require(
            isinstance(cfg[key], bool),
            f"trainer.{key}",
            f"must be true or false (got {cfg[key]!r})",
        )
    require(
        cfg["figures"] or not steps,
        "trainer.figures_at",
        f"trainer.figures=false draws no figures, so none at steps {steps}; use "
        "trainer.figures_at=[]",
    )


def check_targets(targets: Mapping[str, Any], goals: Mapping[str, str]) -> None:
    for name, values in targets.items():
        require(name in goals, f"targets.{name}", f"unknown metric; valid: {', '.join(goals)}")
        require(
            isinstance(values, Sequence) and not isinstance(values, str),
            f"targets.{name}",
            f"must be a list of numbers, e.g. [0.9, 0.95] (got {values!r})",
        )
        require(
            all(is_number(v) for v in values),
            f"targets.{name}",
            f"must be a list of numbers (got {list(values)})",
        )


def check_sections(cfg: Mapping[str, Any]) -> None:
    """Every key of the config is a setting of its section's schema, of its type."""
    check_root(cfg)
    for key, registry in (("task", TASKS), ("model", MODELS), ("dataset", DATASETS)):
        entry = registry[cfg[key]["name"]]
        check_section(key, cfg[key], entry.config, f"{key} {entry.name}")
    check_augmentation(cfg["augmentation"])


def check_config(cfg: Mapping[str, Any]) -> Checked:
    """Raise ConfigError for the first value that cannot work; cheap, touches no data."""
    check_sections(cfg)
    require(
        isinstance(cfg["seed"], int) and not isinstance(cfg["seed"], bool),
        "seed",
        f"must be an integer (got {cfg['seed']!r})",
    )
    split = cfg["dataset"].get("split_seed")
    require(
        split is None or is_count(split, 0),
        "dataset.split_seed",
        f"must be null (each run's seed draws the data) or an integer >= 0 (got {split!r})",
    )
    task = check_task(cfg)
    model = check_model(cfg["model"], task.input_shape(cfg), cfg["dataset"]["name"])
    factory = check_activation(cfg["activation"], task)
    check_optimizer(cfg["optimizer"])
    check_trainable(cfg, model, task.capabilities, factory.capabilities)
    check_trainer(cfg["trainer"], full_batch=task.capabilities.full_batch)
    check_targets(cfg["targets"], task.goals)
    check_stack(cfg, model, factory.capabilities, task.capabilities)
    check_bench(cfg.get("bench") or {}, cfg["model"]["name"], model)
    return Checked(task, model, factory)


MATCHES = (None, "params")


def check_bench(bench: Mapping[str, Any], model_name: str, model: ModelCapabilities) -> None:
    """bench.match: null or params; params needs a model whose width a key sets."""
    match = bench.get("match")
    require(
        match in MATCHES,
        "bench.match",
        f"unknown match {match!r}; valid: null (none), params",
    )
    sized = [
        e.name for e in MODELS.values() if not callable(e.capabilities) and e.capabilities.width
    ]
    require(
        match != "params" or model.width is not None,
        "bench.match",
        f"params sets the model's width, and model={model_name} has none that one key sets; "
        f"models with one: {', '.join(sized)}",
    )


def check_stack(
    cfg: Mapping[str, Any],
    model: ModelCapabilities,
    activation: Capabilities,
    task: TaskCapabilities,
) -> None:
    """trainer.stack > 1 needs what stacking can reproduce exactly: a model and activation
    whose capabilities say ``stackable``, an elementwise optimizer, no L-BFGS phase; a
    compiled stack, a task whose loss runs under torch.func."""
    stack = cfg["trainer"]["stack"]
    require(
        isinstance(stack, int) and not isinstance(stack, bool) and stack >= 1,
        "trainer.stack",
        f"must be an integer >= 1 (got {stack!r})",
    )
    planned = cfg.get(PLAN_KEY)  # a job of hydra/sweeper=stacked: its runs, stacked
    if planned is not None:
        require(
            stack == 1,
            "trainer.stack",
            "hydra/sweeper=stacked stacks the sweep's runs itself; use trainer.stack=1",
        )
        stack = len(planned)
    if stack == 1:
        return
    always = [e.name for e in MODELS.values() if not callable(e.capabilities)]
    always = [name for name in always if MODELS[name].capabilities_of({}).stackable]
    settings = [e.name for e in MODELS.values() if callable(e.capabilities)]
    require(
        model.stackable,
        "trainer.stack",
        f"model={cfg['model']['name']} cannot be stacked as configured (BatchNorm statistics "
        f"or dropout masks would differ from separate runs'); stackable: {', '.join(always)}"
        f"{', and ' + ', '.join(settings) + ' as some settings allow' if settings else ''}; "
        "use trainer.stack=1",
    )
    require(
        activation.stackable,
        "trainer.stack",
        f"activation {cfg['activation']['name']} says it cannot be stacked; use trainer.stack=1",
    )
    elementwise = [e.name for e in OPTIMIZERS.values() if e.capabilities.elementwise]
    require(
        OPTIMIZERS[cfg["optimizer"]["name"]].capabilities.elementwise,
        "trainer.stack",
        f"stacks runs whose optimizer updates each element on its own "
        f"({', '.join(elementwise)}); use trainer.stack=1 with {cfg['optimizer']['name']}",
    )
    own = {key_of(o) for entry in planned or () for o in list(entry)[2:]}
    rates = sorted(own & {"optimizer.lr", "optimizer.weight_decay"})
    per_run = [e.name for e in OPTIMIZERS.values() if e.capabilities.per_run_rates]
    require(
        not rates or OPTIMIZERS[cfg["optimizer"]["name"]].capabilities.per_run_rates,
        rates[0] if rates else "optimizer",
        f"optimizer={cfg['optimizer']['name']} cannot give the runs of one stack their own "
        f"rate or weight decay ({', '.join(per_run)} can); sweep it with the basic sweeper",
    )
    require(
        cfg["trainer"]["lbfgs_steps"] == 0,
        "trainer.stack",
        "L-BFGS's line search would couple the stacked runs; use trainer.stack=1",
    )
    require(
        cfg["trainer"]["compile"] is not True or task.functional_loss,
        "trainer.compile",
        f"compiles stacks whose task's loss runs under torch.func (regression, "
        f"physics-informed), not {cfg['task']['name']}; use trainer.compile=auto or false",
    )
