"""A sweep folder's runs: config, metrics.json and training-loss curve of each, grouped
into the cells of a papers'-style table (rows: model/dataset, columns: activation)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from adaptrun.checkpoint import flat_config
from adaptrun.stacking import PLAN_KEY

log = logging.getLogger(__name__)

# Replicates of one configuration: averaged over, never a row or column of their own.
REPLICATE_KEYS = ("seed", "protocol.fold")
IGNORED = ("trainer.device", "dataset.root", "data_root")


@dataclass
class Run:
    """One run folder of the sweep."""

    folder: Path
    config: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def status(self) -> str:
        """completed / diverged / failed / interrupted, or missing (no metrics.json)."""
        return str(self.metrics.get("status", "missing"))


@dataclass
class Cell:
    """The runs of one row and one column: the same configuration over seeds/folds."""

    runs: list[Run] = field(default_factory=list)

    def with_status(self, status: str) -> list[Run]:
        return [r for r in self.runs if r.status == status]

    @property
    def not_finished(self) -> str:
        """What did not complete, e.g. ``1 failed, 1 missing`` ("" when all did): shown in
        every table cell and legend, never left out."""
        tally: dict[str, int] = {}
        for run in self.runs:
            if run.status != "completed":
                tally[run.status] = tally.get(run.status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(tally.items()))


@dataclass
class Grid:
    """Row label -> column label -> cell, with the keys that made the labels."""

    row_keys: list[str]
    column_keys: list[str]
    cells: dict[str, dict[str, Cell]]

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.cells.values():
            seen.update(dict.fromkeys(row))
        return list(seen)

    def goal(self, metric: str) -> str:
        """``max`` or ``min``: whether higher or lower is better, as the runs' task declared
        it in metrics.json (``goals``; ``final_``/``best_`` prefixes are ignored)."""
        name = metric.removeprefix("final_").removeprefix("best_")
        for row in self.cells.values():
            for cell in row.values():
                for run in cell.runs:
                    declared = (run.metrics.get("goals") or {}).get(name)
                    if declared:
                        return declared
        # records written before metrics.json carried goals: accuracies are maximised
        return "max" if name.endswith("acc") else "min"


def load_runs(sweep_dir: Path) -> list[Run]:
    """Every run folder below ``sweep_dir`` (a folder holding ``.hydra/config.yaml``)."""
    runs = []
    for config_file in sorted(Path(sweep_dir).glob("**/.hydra/config.yaml")):
        folder = config_file.parent.parent
        config = _resolved(OmegaConf.load(config_file))
        if int(config.get("trainer.stack") or 1) > 1 or PLAN_KEY in config:
            continue  # a job of stacked runs: each run has a folder of its own
        metrics_file = folder / "metrics.json"
        metrics: dict[str, Any] = {}
        if metrics_file.exists():
            try:
                metrics = json.loads(metrics_file.read_text())
            except ValueError:
                log.warning("%s is not valid JSON; the run counts as missing", metrics_file)
        runs.append(Run(folder, config, metrics))
    return sorted(runs, key=lambda r: (_job_num(r.folder), str(r.folder)))


def _resolved(config: Any) -> dict[str, Any]:
    """The saved config, flat, each interpolation resolved (``activation.n`` as the number
    a preset's ``${slope_defaults.n}`` gave it, so runs label and group by what ran), or
    kept as written where it cannot be resolved outside its run (a resolver of Hydra's)."""
    flat = flat_config(OmegaConf.to_container(config, resolve=False))
    for key, value in flat.items():
        if isinstance(value, str) and "${" in value:
            with contextlib.suppress(OmegaConfBaseException):
                resolved = OmegaConf.select(config, key, throw_on_resolution_failure=True)
                flat[key] = (
                    OmegaConf.to_container(resolved) if OmegaConf.is_config(resolved) else resolved
                )
    return flat


def _job_num(folder: Path) -> int:
    """The run's number in its sweep, so columns follow the command line's order."""
    for job_dir in (folder, folder.parent):  # a stacked run's job is its parent folder
        hydra_file = job_dir / ".hydra" / "hydra.yaml"
        if hydra_file.exists():
            num = OmegaConf.load(hydra_file).hydra.job.get("num")
            return num if isinstance(num, int) else -1
    return -1


def varying(runs: Sequence[Run]) -> list[str]:
    """Config keys whose value differs between runs (replicate keys included)."""
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.config))
    return [
        k for k in keys if k not in IGNORED and len({json.dumps(r.config.get(k)) for r in runs}) > 1
    ]


def build_grid(runs: Sequence[Run]) -> Grid:
    """Rows: model and dataset (plus any other key the sweep varied); columns: the
    activation (plus any activation.* key the sweep varied); replicates share a cell."""
    vary = [k for k in varying(runs) if k not in REPLICATE_KEYS]
    column_keys = ["activation.name"] + [
        k
        for k in vary
        if k.startswith("activation.") and not _follows(k, ["activation.name"], runs)
    ]
    row_keys = ["model.name", "dataset.name"] + [
        k
        for k in vary
        if not k.startswith(("activation.", "model.name", "dataset.name"))
        and not _follows(k, ["model.name", "dataset.name", *column_keys], runs)
    ]
    cells: dict[str, dict[str, Cell]] = {}
    for run in runs:
        row = label(run.config, row_keys, short=2)
        column = label(run.config, column_keys, short=1)
        cells.setdefault(row, {}).setdefault(column, Cell()).runs.append(run)
    return Grid(row_keys, column_keys, cells)


def _follows(key: str, by: Iterable[str], runs: Sequence[Run]) -> bool:
    """True when ``key``'s value is fixed by the ``by`` keys (e.g. dataset.num_classes
    by dataset.name), so it adds nothing to a label."""
    seen: dict[str, str] = {}
    for run in runs:
        ident = json.dumps([run.config.get(k) for k in by])
        value = json.dumps(run.config.get(key))
        if seen.setdefault(ident, value) != value:
            return False
    return True


def label(config: Mapping[str, Any], keys: Sequence[str], short: int) -> str:
    """The first ``short`` keys by value alone (``mlp/digits``), the rest as key=value."""
    head = [str(config.get(k)) for k in keys[:short]]
    tail = [f"{k.split('.', 1)[-1]}={config.get(k)}" for k in keys[short:]]
    return "/".join(head) + (f" ({', '.join(tail)})" if tail else "")
