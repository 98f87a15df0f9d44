"""Per-run records: TensorBoard scalars and histograms, convergence figures, metrics.json."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from adaptrun.activations import activation_parameters
from adaptrun.convergence import Point, auc_log10, first_reach
from adaptrun.files import replace_atomically
from adaptrun.progress import Progress

log = logging.getLogger(__name__)


def tag(metric: str) -> str:
    """TensorBoard tag of a metric key: ``test_acc`` -> ``test/acc``."""
    return metric.replace("_", "/", 1)


class Tracker:
    """Collects what a run logs and writes it out.

    Train losses are summed on the device and read back every ``log_every`` steps,
    so logging does not force a device sync on every step.
    """

    def __init__(
        self,
        run_dir: Path,
        model: nn.Module,
        goals: Mapping[str, str],
        targets: Mapping[str, Sequence[float]],
        steps_per_epoch: int,
        total_steps: int,
        log_every: int,
        hparams: Mapping[str, Any],
        figures: Callable[[], Mapping[str, Any]] | None = None,
        figure_steps: Sequence[int] = (),
        purge_step: int | None = None,
        name: str = "",
        show_progress: bool = True,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.model = model
        self.goals = dict(goals)
        self.targets = {k: [float(t) for t in v] for k, v in targets.items()}
        self.steps_per_epoch = steps_per_epoch
        self.log_every = log_every
        self.hparams = dict(hparams)
        self.history: dict[str, list[Point]] = {name: [] for name in goals}
        self.figures = figures
        self.figure_steps = set(figure_steps)
        self.step = 0
        self.last_eval_step = -1
        self.last_figure_step = -1
        self._loss_sum: torch.Tensor | None = None
        self._penalty_sum: torch.Tensor | None = None
        self._count = 0
        self._lr = 0.0
        # purge_step: a resumed run tells TensorBoard to forget later points of the last try
        self.writer = SummaryWriter(str(self.run_dir), purge_step=purge_step)
        self.name = name  # tells stacked runs apart in the shared log
        self.progress = Progress(total_steps, steps_per_epoch, enabled=show_progress)
        self.start = time.perf_counter()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to go on logging exactly as an unstopped run would."""
        return {
            "history": {k: [dataclasses.astuple(p) for p in v] for k, v in self.history.items()},
            "step": self.step,
            "last_eval_step": self.last_eval_step,
            "last_figure_step": self.last_figure_step,
            "loss_sum": self._loss_sum,
            "penalty_sum": self._penalty_sum,
            "count": self._count,
            "lr": self._lr,
            "seconds": time.perf_counter() - self.start,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        device = next(self.model.parameters()).device
        self.history = {k: [Point(*p) for p in v] for k, v in state["history"].items()}
        self.step = state["step"]
        self.last_eval_step = state["last_eval_step"]
        self.last_figure_step = state["last_figure_step"]
        self._loss_sum, self._penalty_sum = (
            None if t is None else t.to(device) for t in (state["loss_sum"], state["penalty_sum"])
        )
        self._count = state["count"]
        self._lr = state["lr"]
        self.start = time.perf_counter() - state["seconds"]
        self.progress.update(self.step)

    def train_step(self, step: int, loss: torch.Tensor, penalty: torch.Tensor, lr: float) -> bool:
        """Add one step's loss; returns False once the logged loss is not finite."""
        self.step, self._lr = step, lr
        self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
        self._penalty_sum = penalty if self._penalty_sum is None else self._penalty_sum + penalty
        self._count += 1
        return step % self.log_every != 0 or self._flush()

    def evaluate(self, step: int, metrics: Mapping[str, float], final: bool = False) -> None:
        """Record test metrics, slopes and (at chosen steps, and at the end) figures."""
        self.last_eval_step = step
        for name, value in metrics.items():
            self._record(name, step, value)
            self.writer.add_scalar(tag(name), value, step)
        self.progress.update(step, **metrics)
        self._log_slopes(step)
        if self.figures is not None and (final or step in self.figure_steps):
            self._draw(step)
        shown = ", ".join(f"{k}={v[-1].value:.4g}" for k, v in self.history.items() if v)
        prefix = f"{self.name}: " if self.name else ""
        log.info("%sstep %d (epoch %.2f): %s", prefix, step, step / self.steps_per_epoch, shown)

    def end_epoch(self, step: int, evaluate: Callable[[], Mapping[str, float]] | None) -> bool:
        """Flush the train loss and evaluate if asked (unless just done); False if diverged."""
        if not self._flush():
            return False
        if evaluate is not None and self.last_eval_step != step:
            self.evaluate(step, evaluate())
        return True

    def end_training(self, evaluate: Callable[[], Mapping[str, float]]) -> bool:
        """The final evaluation and figures; False if the last losses were not finite."""
        if not self._flush():
            return False
        if self.last_eval_step != self.step:
            self.evaluate(self.step, evaluate(), final=True)
        elif self.figures is not None and self.last_figure_step != self.step:
            self._draw(self.step)
        return True

    def _draw(self, step: int) -> None:
        self.last_figure_step = step
        for name, figure in self.figures().items():
            self.writer.add_figure(f"figures/{name}", figure, step, close=True)

    def finish(
        self, status: str, error: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Write metrics.json, the convergence scalars and the hparams summary; close."""
        self._flush()
        metrics = {**self._metrics(status, error), **(extra or {})}
        self._write_tensorboard_summary(metrics)
        write_json_atomic(self.run_dir / "metrics.json", metrics)
        self.writer.close()
        self.progress.close()
        return metrics

    def _flush(self) -> bool:
        if self._count == 0:
            return True
        loss = (self._loss_sum / self._count).item()
        penalty = (self._penalty_sum / self._count).item()
        self._loss_sum, self._penalty_sum, self._count = None, None, 0
        if not (math.isfinite(loss) and math.isfinite(penalty)):
            log.warning("non-finite training loss at step %d: run diverged", self.step)
            return False
        self._record("train_loss", self.step, loss)
        self.writer.add_scalar("train/loss", loss, self.step)
        self.writer.add_scalar("train/slope_recovery", penalty, self.step)
        self.writer.add_scalar("train/lr", self._lr, self.step)
        self.progress.update(self.step, loss=loss)
        return True

    def _record(self, name: str, step: int, value: float) -> None:
        seconds = time.perf_counter() - self.start
        point = Point(step, step / self.steps_per_epoch, seconds, value)
        self.history.setdefault(name, []).append(point)

    def _log_slopes(self, step: int) -> None:
        """Whatever the model's modules offer through ``slopes(name)``."""
        slopes: dict[str, torch.Tensor] = {}
        for name, module in self.model.named_modules():
            offered = getattr(module, "slopes", None)
            if callable(offered):
                slopes.update(offered(name))
        for name, slope in slopes.items():
            slope = slope.detach().float()
            if slope.numel() == 1:
                self.writer.add_scalar(f"slopes/{name}", slope.item(), step)
            else:
                self.writer.add_histogram(f"slopes/{name}", slope, step)
                self.writer.add_scalar(f"slopes_mean/{name}", slope.mean().item(), step)

    def _metrics(self, status: str, error: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"status": status, "error": error}
        out["steps"] = self.step
        out["epochs"] = round(self.step / self.steps_per_epoch, 4)
        out["wall_seconds"] = round(time.perf_counter() - self.start, 3)
        out["seconds_per_step"] = round(out["wall_seconds"] / self.step, 6) if self.step else None
        for name, points in self.history.items():
            out[f"final_{name}"] = points[-1].value if points else None
            if name != "train_loss":
                pick = max if self.goals[name] == "max" else min
                best = pick(points, key=lambda p: p.value) if points else None
                out[f"best_{name}"] = best.value if best else None
                out[f"best_{name}_step"] = best.step if best else None
        out["convergence"] = {  # a target for a metric this run lacks (no val split) stays null
            name: {f"{t:g}": self._first_reach(name, t) for t in targets}
            for name, targets in self.targets.items()
        }
        out["auc_log10_train_loss"] = auc_log10(self.history["train_loss"])
        act_params = activation_parameters(self.model)
        out["params"] = {
            "total": sum(p.numel() for p in self.model.parameters()),
            "activation": sum(p.numel() for p in act_params),
        }
        out["hparams"] = self.hparams
        return out

    def _first_reach(self, name: str, target: float) -> dict[str, float] | None:
        if name not in self.goals:
            return None
        return first_reach(self.history[name], target, self.goals[name])

    def _write_tensorboard_summary(self, metrics: Mapping[str, Any]) -> None:
        scalars: dict[str, float] = {}
        for key in ("final_train_loss", "auc_log10_train_loss", *self._eval_keys()):
            if isinstance(metrics.get(key), (int, float)):
                scalars[f"hparam/{key}"] = float(metrics[key])
        for name, reached in metrics["convergence"].items():
            for target, where in reached.items():
                if where is not None:
                    scalars[f"convergence/steps_to_{name}_{target}"] = float(where["step"])
                    scalars[f"convergence/epochs_to_{name}_{target}"] = float(where["epoch"])
        hparams = {
            k: v if isinstance(v, (int, float, str, bool)) else str(v)
            for k, v in self.hparams.items()
        }
        hparams["status"] = metrics["status"]
        for summary in hparams_summary(hparams, scalars):
            self.writer.file_writer.add_summary(summary)
        for key, value in scalars.items():
            self.writer.add_scalar(key, value, self.step)

    def _eval_keys(self) -> list[str]:
        names = [n for n in self.history if n != "train_loss"]
        return [f"{kind}_{n}" for n in names for kind in ("final", "best")]


def write_failure(
    run_dir: Path, error: str, hparams: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> None:
    """metrics.json for a run that failed before its tracker existed (e.g. missing data)."""
    metrics = {"status": "failed", "error": error, "steps": 0, "hparams": dict(hparams)}
    metrics.update(extra or {})
    write_json_atomic(Path(run_dir) / "metrics.json", metrics)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """metrics.json and the like: readers never see half a file."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    replace_atomically(path, lambda f: f.write(text.encode()))
