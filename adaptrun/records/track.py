"""Per-run records: the training loss window, the history, TensorBoard and metrics.json.

``Tracker`` wires the pieces that each do one job (``LossWindow``, ``History``, ``Board``,
``Progress``) to the loop's few calls. It records; the loop decides when a run diverged
(``adaptrun.training.loop``) and tells it (``retire``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptrun.activations import activation_parameters
from adaptrun.activations.plots import learned_functions
from adaptrun.core.files import write_text_atomic
from adaptrun.records.board import Board, tag
from adaptrun.records.history import History
from adaptrun.records.progress import Progress

log = logging.getLogger(__name__)

# What a closed log window read back: each run's (mean loss, mean penalty), by run index.
Logged = dict[int, tuple[float, float]]


class LossWindow:
    """Train loss and penalty summed on the device and read back every ``every`` steps, so
    logging forces no device sync on every step."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.loss: torch.Tensor | None = None
        self.penalty: torch.Tensor | None = None
        self.count = 0

    def add(self, loss: torch.Tensor, penalty: torch.Tensor) -> None:
        self.loss = loss if self.loss is None else self.loss + loss
        self.penalty = penalty if self.penalty is None else self.penalty + penalty
        self.count += 1

    def close(self) -> tuple[Any, Any] | None:
        """The window's means, read back from the device (floats, or lists of floats for
        a stack's per-run losses); None if it is empty."""
        if self.loss is None or self.penalty is None:
            return None
        means = ((self.loss / self.count).tolist(), (self.penalty / self.count).tolist())
        self.loss, self.penalty, self.count = None, None, 0
        return means

    def state_dict(self) -> dict[str, Any]:
        return {"loss_sum": self.loss, "penalty_sum": self.penalty, "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device) -> None:
        self.loss, self.penalty = (
            None if t is None else t.to(device) for t in (state["loss_sum"], state["penalty_sum"])
        )
        self.count = state["count"]


class Tracker:
    """Records one run: the loop reports steps, losses and evaluations; the tracker writes
    TensorBoard, keeps the history, drives the progress bar and writes metrics.json."""

    def __init__(
        self,
        run_dir: Path,
        model: nn.Module,
        history: History,
        board: Board,
        progress: Progress,
        log_every: int,
        hparams: Mapping[str, Any],
        figures: Callable[[], Mapping[str, Any]] | None = None,
        figure_steps: Sequence[int] = (),
        name: str = "",
        trial: str = "",
        experiment: bool = True,
        primary: str = "train_loss",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.model = model
        self.history = history
        self.board = board
        self.progress = progress
        self.window = LossWindow(log_every)
        self.hparams = dict(hparams)
        self.figures = figures
        self.figure_steps = set(figure_steps)
        self.name = name  # tells stacked runs apart in the shared log
        self.trial = trial or self.run_dir.name  # the run's name in the HParams dashboard
        self.experiment = experiment  # write the dashboard's columns (not inside a sweep)
        self.primary = primary  # the metric the task is compared by: the dashboards' first
        self.step = 0
        self.lr = 0.0
        self.last_eval_step = -1
        self.last_figure_step = -1
        self.alive = True
        self.failed = False  # ended by an exception of its own (a stacked run's, alone)
        self.why: str | None = None  # why the run diverged or failed

    @property
    def prefix(self) -> str:
        """What this run's log lines start with: its name, within a stack."""
        return f"{self.name}: " if self.name else ""

    def train_step(
        self, step: int, loss: torch.Tensor, penalty: torch.Tensor, lr: float
    ) -> Logged | None:
        """Add one step's loss; every ``log_every`` steps, what the closed window held."""
        self.at(step, lr)
        self.window.add(loss, penalty)
        return self.close_window() if step % self.window.every == 0 else None

    def at(self, step: int, lr: float) -> None:
        """The loop has taken this step at this rate; a run that ended keeps the step it
        ended at (within a stack, whose other runs go on)."""
        if self.alive:
            self.step, self.lr = step, lr

    def outcome(self, status: str) -> str:
        """The run's status when the loop ends with ``status``: one that diverged or failed
        on its own says so, whatever the others in its stack did."""
        if self.alive:
            return status
        return "failed" if self.failed else "diverged"

    def close_window(self) -> Logged | None:
        """Read back the open window and record it where it is finite."""
        means = self.window.close()
        return None if means is None else self.record_window(means)

    def record_window(self, means: tuple[float, float]) -> Logged:
        """Record a closed window's (mean loss, mean penalty) where they are finite."""
        loss, penalty = means
        if all(map(math.isfinite, means)):
            self.history.record("train_loss", self.step, loss)
            values = {"train/loss": loss, "train/slope_recovery": penalty, "train/lr": self.lr}
            self.board.scalars(self.step, values)
            self.progress.update(self.step, loss=loss)
        return {0: means}

    def retire(self, bad: Logged) -> None:
        """The loop found this run's loss not finite: it diverged and records no more."""
        if self.alive:
            self.alive = False
            loss, penalty = next(iter(bad.values()))
            self.why = f"the training loss was {loss:g} (penalty {penalty:g}) at step {self.step}"
            log.warning("%srun diverged: %s", self.prefix, self.why)

    def fail(self, error: str) -> None:
        """This run raised on its own (within a stack, whose other runs go on): it failed
        and records no more."""
        if self.alive:
            self.alive, self.failed, self.why = False, True, error
            log.warning("%srun failed: %s", self.prefix, error)

    def evaluate(self, step: int, metrics: Mapping[str, float], final: bool = False) -> None:
        """Record test metrics, slopes and (at chosen steps, and at the end) figures."""
        self.last_eval_step = step
        for name, value in metrics.items():
            self.history.record(name, step, value)
        self.board.scalars(step, {tag(name): value for name, value in metrics.items()})
        self.progress.update(step, **metrics)
        self.board.slopes(self.model, step)
        if self.figures is not None and (final or step in self.figure_steps):
            self._draw(step)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.history.latest().items())
        epoch = step / self.history.steps_per_epoch
        log.info("%sstep %d (epoch %.2f): %s", self.prefix, step, epoch, shown)

    def end(self, evaluate: Callable[[], Mapping[str, float]]) -> None:
        """The final evaluation and figures, unless this step has them already."""
        if self.last_eval_step != self.step:
            self.evaluate(self.step, evaluate(), final=True)
        elif self.figures is not None and self.last_figure_step != self.step:
            self._draw(self.step)

    def _draw(self, step: int) -> None:
        if self.figures is None:
            return
        self.last_figure_step = step
        self.board.figures(step, self.figures())

    def flush(self) -> None:
        """Every event logged so far on disk (before a checkpoint is written)."""
        self.board.flush()

    def finish(
        self, status: str, error: str | None = None, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Write metrics.json, then the summary scalars and the HParams session; close."""
        self.close_window()
        metrics: dict[str, Any] = {"status": status, "error": error or self.why}
        metrics.update(self.history.summary(self.step))
        act_params = activation_parameters(self.model)
        metrics["params"] = {
            "total": sum(p.numel() for p in self.model.parameters()),
            "activation": sum(p.numel() for p in act_params),
        }
        metrics["hparams"] = self.hparams
        metrics["goals"] = self.history.goals  # which way is better, for the report
        learned = self._learned()
        if learned:
            metrics["learned_activation"] = learned  # the report draws them side by side
        metrics.update(extra or {})
        write_json_atomic(self.run_dir / "metrics.json", metrics)  # the record, first
        self.progress.close()
        try:
            self.board.summary(
                self.step, self.hparams, metrics, self.trial, self.experiment, self.primary
            )
            self.board.close()
        except Exception as exc:  # e.g. a full disk: metrics.json stands
            log.warning(
                "the TensorBoard summary of %s could not be written (%s: %s)",
                self.run_dir,
                type(exc).__name__,
                exc,
            )
        return metrics

    def _learned(self) -> dict[str, Any]:
        """The learned activations' functions, or nothing when they cannot be evaluated
        (metrics.json is written regardless)."""
        try:
            return learned_functions(self.model)
        except Exception as exc:
            log.warning("the learned activations of %s could not be evaluated (%s: %s)",
                        self.run_dir, type(exc).__name__, exc)  # fmt: skip
            return {}

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to go on logging exactly as an unstopped run would."""
        return {
            **self.history.state_dict(),
            **self.window.state_dict(),
            "step": self.step,
            "last_eval_step": self.last_eval_step,
            "last_figure_step": self.last_figure_step,
            "lr": self.lr,
            "alive": self.alive,
            "failed": self.failed,
            "why": self.why,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.history.load_state_dict(state)
        self.window.load_state_dict(state, next(self.model.parameters()).device)
        self.step = state["step"]
        self.last_eval_step = state["last_eval_step"]
        self.last_figure_step = state["last_figure_step"]
        self.lr = state["lr"]
        self.alive = state.get("alive", True)  # older checkpoints: saved while alive
        self.failed = state.get("failed", False)
        self.why = state.get("why")
        self.progress.update(self.step)


def write_failure(
    run_dir: Path, error: str, hparams: Mapping[str, Any], extra: Mapping[str, Any] | None = None
) -> None:
    """metrics.json for a run that failed before its tracker existed (e.g. missing data)."""
    metrics = {"status": "failed", "error": error, "steps": 0, "hparams": dict(hparams)}
    metrics.update(extra or {})
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(run_dir) / "metrics.json", metrics)


def write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    """metrics.json and the like: readers never see half a file."""
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"
    write_text_atomic(path, text)
