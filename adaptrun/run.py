"""One run: config -> task, model, optimizer, tracker -> the training loop -> metrics."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from adaptrun import checkpoint
from adaptrun.activations import APL, ActivationFactory, AdAct
from adaptrun.activations.plots import activation_curves
from adaptrun.checkpoint import fingerprint, flat_config
from adaptrun.config_check import check_activation, check_config
from adaptrun.errors import UserError
from adaptrun.events import truncate_events
from adaptrun.interrupt import STOP
from adaptrun.models import build_model
from adaptrun.optim import build_optimizer, build_schedule
from adaptrun.steps import build_step
from adaptrun.tasks import build_task
from adaptrun.track import Tracker, write_failure
from adaptrun.train import Loop, train

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; check_config has refused cuda without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def describe(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The settings people compare runs by, for TensorBoard's HParams dashboard."""
    act = cfg["activation"]
    return {
        "dataset": cfg["dataset"]["name"],
        "model": cfg["model"]["name"],
        "activation": act["name"],
        "variant": act["variant"],
        "base": act["base"],
        "n": act["n"],
        "slope_recovery": act["slope_recovery"],
        "optimizer": cfg["optimizer"]["name"],
        "lr": cfg["optimizer"]["lr"],
        "batch_size": cfg["trainer"]["batch_size"],
        "epochs": cfg["trainer"]["epochs"],
        "seed": cfg["seed"],
    }


def describe_error(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def _log_failure(exc: BaseException) -> None:
    """The full traceback goes to the run's log file; the CLI prints the one-line reason."""
    log.error("run failed: %s", describe_error(exc), exc_info=exc, extra={"file_only": True})


def finished_run(run_dir: Path, config_hash: str) -> dict[str, Any] | None:
    """metrics.json of a run that already ended for good (completed or diverged) here."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: train again, it is rewritten at the end
    if metrics.get("status") not in ("completed", "diverged"):
        return None
    if metrics.get("config_hash") != config_hash:
        raise UserError(
            f"{run_dir} holds a finished run of another config; "
            "choose another folder (hydra.run.dir / hydra.sweep.dir) to run this one"
        )
    return metrics


def _figures(task: Any, model: torch.nn.Module) -> Callable[[], dict[str, Any]] | None:
    """The task's own figures plus learned piecewise-linear activations, if any."""
    has_curves = any(isinstance(m, (AdAct, APL)) for m in model.modules())
    if not hasattr(task, "figures") and not has_curves:
        return None
    return lambda: {
        **(task.figures(model) if hasattr(task, "figures") else {}),
        **activation_curves(model),
    }


def run(
    cfg: DictConfig, run_dir: Path, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Train one configuration into ``run_dir``; returns what metrics.json holds.

    A ConfigError from the config check means nothing was started. A folder whose run
    already completed (or diverged) is left as it is; one with a checkpoint resumes
    from it. Any later exception (a missing dataset, a crash while training) is
    recorded in metrics.json with status ``failed`` and raised again.
    """
    check_config(cfg)
    run_dir = Path(run_dir)
    config = flat_config(OmegaConf.to_container(cfg, resolve=True))
    meta = {"config_hash": fingerprint(config)}
    hparams = {**describe(cfg), **(overrides or {})}
    finished = finished_run(run_dir, meta["config_hash"])
    if finished is not None:
        log.info("%s already %s: skipped", run_dir, finished["status"])
        return {**finished, "skipped": True}
    if STOP:  # a stop signal reached this process during an earlier run of the sweep
        return {"status": "interrupted", "error": f"not started: {STOP.name} received"}
    with STOP.installed():
        return _train(cfg, run_dir, config, hparams, meta)


def _train(
    cfg: DictConfig,
    run_dir: Path,
    config: Mapping[str, Any],
    hparams: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> dict[str, Any]:
    try:
        seed_everything(cfg.seed)
        device = resolve_device(cfg.trainer.device)
        task = build_task(cfg, device)
        factory = ActivationFactory(check_activation(cfg.activation))
        model = build_model(cfg.model, task.input_shape, task.num_outputs, factory).to(device)
        loop = Loop.from_config(cfg.trainer)
        total = loop.total_steps(task.steps_per_epoch)
        optimizer = build_optimizer(model, cfg.optimizer)
        schedule = build_schedule(optimizer, cfg.optimizer, task.steps_per_epoch, total)
        resumed = checkpoint.load(run_dir / checkpoint.FILENAME, config)
        truncate_events(run_dir, resumed["saved_at"] if resumed else None)
        tracker = Tracker(
            run_dir,
            model,
            task.goals,
            OmegaConf.to_container(cfg.targets),
            task.steps_per_epoch,
            total + loop.lbfgs_steps,
            cfg.trainer.log_every,
            hparams,
            figures=_figures(task, model),
            figure_steps=list(cfg.trainer.figures_at),
            purge_step=resumed["position"]["step"] + 1 if resumed else None,
        )
    except Exception as exc:
        _log_failure(exc)
        write_failure(run_dir, describe_error(exc), hparams, meta)
        raise
    state = {"model": model, "optimizer": optimizer, "schedule": schedule, "tracker": tracker}
    saver = checkpoint.Checkpoints(
        run_dir,
        config,
        state,
        cfg.trainer.checkpoint_every,
        cfg.trainer.checkpoint_every_epochs,
    )
    start = saver.apply(resumed) if resumed else checkpoint.Position()
    if resumed:
        log.info("resuming from %s at step %d", saver.path, start.step)
    log.info("training %s on %s for %d steps (%s)", cfg.model.name, cfg.dataset.name, total, device)
    try:
        step_fn = build_step(model, task, cfg.trainer.compile, cfg.trainer.precision, cfg.optimizer)
        with tracker.progress.logging():
            status = train(model, task, step_fn, optimizer, schedule, tracker, loop, saver, start)
    except Exception as exc:
        _log_failure(exc)
        tracker.finish("failed", error=describe_error(exc), extra=meta)
        raise
    metrics = tracker.finish(status, extra=meta)
    if status == "interrupted":
        log.warning(
            "stopped by %s at step %d; run again in %s to resume", STOP.name, tracker.step, run_dir
        )
        STOP.hand_over()  # inside a submitit job: requeue it (this does not return)
        return metrics
    saver.remove()
    log.info(
        "%s after %d steps; metrics in %s", status, metrics["steps"], Path(run_dir) / "metrics.json"
    )
    return metrics
