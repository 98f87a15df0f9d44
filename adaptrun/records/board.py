"""A run's TensorBoard events: scalars, the activations' slopes, figures, the hparams summary."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

from adaptrun.activations import activation_modules
from adaptrun.records import hparams as hp


def tag(metric: str) -> str:
    """TensorBoard tag of a metric key: ``test_acc`` -> ``test/acc``."""
    return metric.replace("_", "/", 1)


class Board:
    """Writes one run's event files. ``purge_step``: a resumed run tells TensorBoard to
    forget the points of the last try after its checkpoint."""

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        self.writer = SummaryWriter(str(run_dir), purge_step=purge_step)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(name, value, step)

    def slopes(self, model: nn.Module, step: int) -> None:
        """Whatever the model's modules offer through ``slopes(name)`` (the slope family's
        n*a), under ``slopes/``; every other activation's own trainable parameters under
        their names, ``activation/<module>.<parameter>`` (a user's Snake alpha needs no
        hook). A scalar as a scalar, a tensor as a histogram and its mean."""
        slopes: dict[str, torch.Tensor] = {}
        own: dict[str, torch.Tensor] = {}
        activations = {id(m) for m in activation_modules(model)}
        seen: set[int] = set()
        for name, module in model.named_modules():
            offered = getattr(module, "slopes", None)
            if callable(offered):
                slopes.update(offered(name))
            elif id(module) in activations:
                for key, param in module.named_parameters():
                    if param.requires_grad and id(param) not in seen:
                        seen.add(id(param))
                        own[f"{name}.{key}"] = param
        self._values("slopes", slopes, step)
        self._values("activation", own, step)

    def _values(self, group: str, values: Mapping[str, torch.Tensor], step: int) -> None:
        for name, value in values.items():
            value = value.detach().float()
            if value.numel() == 1:
                self.writer.add_scalar(f"{group}/{name}", value.item(), step)
            else:
                self.writer.add_histogram(f"{group}/{name}", value, step)
                self.writer.add_scalar(f"{group}_mean/{name}", value.mean().item(), step)

    def figures(self, step: int, figures: Mapping[str, Any]) -> None:
        for name, figure in figures.items():
            self.writer.add_figure(f"figures/{name}", figure, step, close=True)

    def summary(
        self,
        step: int,
        hparams: Mapping[str, Any],
        metrics: Mapping[str, Any],
        trial: str,
        experiment: bool = True,
        primary: str = "train_loss",
    ) -> None:
        """The run's one-point scalars (final and best values, epochs trained, convergence)
        and its HParams session; ``experiment``: also the dashboard's columns (a run outside
        a sweep; a sweep writes them once for all its runs), ``primary`` metric first."""
        scalars = hp.summary_scalars(metrics)
        self.scalars(step, scalars)
        order = hp.metric_tags(metrics.get("goals") or (), {}, primary)
        tags = [t for t in order if t in scalars] + [t for t in scalars if t not in order]
        params = hp.domain([hparams])
        summaries = [hp.experiment(params, tags, ("activation", "seed"))] if experiment else []
        summaries += [hp.session_start(hparams, trial), hp.session_end(metrics["status"])]
        add_summaries(self.writer, *summaries)

    def layout(self, primary: str, goals: Iterable[str]) -> None:
        """The Custom Scalars dashboard: training loss, the task's primary metric, its other
        metrics and the learning rate first, one chart each across every run of the logdir
        (TensorBoard merges the runs' layouts, skipping repeated charts), then the
        activations' own values. The Scalars dashboard orders its groups by name."""
        metrics = [primary, *(g for g in goals if g != primary)]
        compare = {"training loss": ["Multiline", ["^train/loss$"]]}
        for name in metrics:
            if name != "train_loss":
                compare[name.replace("_", " ")] = ["Multiline", [f"^{re.escape(tag(name))}$"]]
        compare["learning rate"] = ["Multiline", ["^train/lr$"]]
        own = {
            "slopes (n*a)": ["Multiline", ["^slopes/", "^slopes_mean/"]],
            "activation parameters": ["Multiline", ["^activation/", "^activation_mean/"]],
            "slope recovery term": ["Multiline", ["^train/slope_recovery$"]],
        }
        self.writer.add_custom_scalars({"compare runs": compare, "activations": own})

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def add_summaries(writer: SummaryWriter, *summaries: Any) -> None:
    """Protocol-buffer summaries (the HParams plugin's) straight into the event file."""
    events = writer.file_writer
    if events is None:
        raise RuntimeError("the TensorBoard writer is closed")
    for summary in summaries:
        events.add_summary(summary)
