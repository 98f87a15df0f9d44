"""A sweep's HParams columns, in its own folder: planned before the first job (so the
dashboard has them while the sweep runs), then rewritten from what the runs recorded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from adaptrun.activations.selfcheck import IMPL_OUTCOMES
from adaptrun.config.plan import run_configs
from adaptrun.core.schemas import plain
from adaptrun.records.hparams import (
    domain,
    experiment,
    metric_tags,
    run_hparams,
    summary_scalars,
    varying,
)
from adaptrun.tasks import TASKS

EVENTS = "events.out.tfevents.*"


def write_planned(
    sweep_dir: Path, jobs: Sequence[Sequence[str]], configs: Sequence[DictConfig]
) -> list[str]:
    """Every key any planned run varies, with every value it takes (the keys that differ
    and the seed listed first), and every summary metric they may write, each task's
    primary metric first. Returns that metric order, for ``write_recorded``."""
    runs: list[dict[str, Any]] = []
    metrics: dict[str, None] = {}
    for overrides, cfg in zip(jobs, configs, strict=True):
        given = [o for o in overrides if "=" in o]
        runs += [run_hparams(one, given) for one in run_configs(cfg)]
        task = TASKS[cfg.task.name]
        metrics.update(dict.fromkeys(metric_tags(task.goals, plain(cfg.targets), task.primary)))
    differs = varying(runs)
    # the kernels' outcome is known when a run ends: every value it can take, meanwhile
    runs += [{"activation.impl_used": o} for o in IMPL_OUTCOMES]
    _write(sweep_dir, experiment(domain(runs), metrics, differs))
    return list(metrics)


def write_recorded(sweep_dir: Path, order: Sequence[str] = ()) -> None:
    """The columns again, from the runs' metrics.json: the values they ran with (the
    kernels each used included) and only the metrics some run wrote (no column that is
    empty for every run), in ``order`` where it has them. Nothing when no run finished."""
    runs, written = [], {}
    for path in sorted(sweep_dir.rglob("metrics.json")):
        try:
            metrics = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a damaged record: the summary names it
        if isinstance(metrics, dict) and "hparams" in metrics and "runs" not in metrics:
            runs.append(metrics["hparams"])
            written.update(dict.fromkeys(summary_scalars(metrics)))
    if not runs:
        return
    tags = [t for t in order if t in written] + [t for t in written if t not in order]
    _write(sweep_dir, experiment(domain(runs), tags, varying(runs)), replace=True)


def _write(sweep_dir: Path, summary: Any, replace: bool = False) -> None:
    """The summary in an event file of the sweep folder itself (its runs' are below it);
    ``replace``: instead of the folder's earlier ones, which TensorBoard would read first."""
    from torch.utils.tensorboard import SummaryWriter

    from adaptrun.records.board import add_summaries

    earlier = sorted(sweep_dir.glob(EVENTS)) if replace else []
    writer = SummaryWriter(str(sweep_dir))
    add_summaries(writer, summary)
    writer.close()
    for old in earlier:
        old.unlink(missing_ok=True)
