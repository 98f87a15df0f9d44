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

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from adaptrun.activations import inert_settings
from adaptrun.config.plan import PLAN_KEY
from adaptrun.core.schemas import plain
from adaptrun.records.checkpoint import flat_config
from adaptrun.records.hparams import differing, follows

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


SEPARATELY_TIMED = (
    "Seconds are left out: these runs were timed in separate jobs, under whatever else the "
    "machine ran, so their times do not compare (steps do); `adaptrun-report --cost` times "
    "each column's step side by side."
)


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

    def timed_together(self) -> bool:
        """Whether every completed run's seconds were measured in one job (a stack's runs
        share every step), so that times compare. Runs of separate jobs ran one after
        another or beside other work, under whatever load the machine had: their seconds
        say nothing about each other, and the report shows steps instead."""
        jobs = {
            run.metrics.get("timed_in")
            for row in self.cells.values()
            for cell in row.values()
            for run in cell.with_status("completed")
        }
        return len(jobs) == 1 and None not in jobs

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


@dataclass
class Sweep:
    """The runs of a sweep folder and what the report must say about reading them."""

    runs: list[Run]
    notes: list[str] = field(default_factory=list)  # one line each: damaged, duplicated


def load_runs(sweep_dir: Path) -> list[Run]:
    return read_sweep(sweep_dir).runs


def read_sweep(sweep_dir: Path) -> Sweep:
    """Every run of the sweep: each folder holding ``.hydra/config.yaml``, and every run
    the sweep's own records name whose folder has none (never started, failed before it
    wrote its config, lost its files), shown with its recorded outcome. A damaged file is
    named in a note, never a crash; runs of one config and seed are counted once. Runs
    that never scored the test split (``trainer.test=false``: a tuned sweep's search,
    whose record is tuning.md) are left out and counted in a note."""
    runs, notes, unplaced, untested = [], [], [], []
    for config_file in sorted(Path(sweep_dir).glob("**/.hydra/config.yaml")):
        folder = config_file.parent.parent
        try:
            loaded = OmegaConf.load(config_file)
            if not OmegaConf.is_dict(loaded):
                raise ValueError(f"it holds {type(loaded).__name__}, not a config")
            config = _resolved(loaded)
        except Exception as exc:  # a damaged file: its run is placed by its overrides
            notes.append(f"{config_file} is damaged ({_one_line(exc)})")
            unplaced.append(folder)
            continue
        if int(config.get("trainer.stack") or 1) > 1 or PLAN_KEY in config:
            continue  # a job of stacked runs: each run has a folder of its own
        if config.get("trainer.test") is False:
            untested.append(Run(folder, config, {}))
            continue
        runs.append(Run(folder, config, _metrics(folder / "metrics.json", notes)))
    runs += _recorded_only(Path(sweep_dir), runs, unplaced, notes, untested)
    if untested:
        notes.append(
            f"{len(untested)} runs without a test split (trainer.test=false, a tuned sweep's "
            "search) are left out of the tables; their validation scores are in tuning.md"
        )
    for run in runs:
        run.config = applied(run.config)
    runs, duplicates = _distinct(runs)
    if duplicates:
        notes.append(
            f"{len(duplicates)} run(s) repeat the config and seed of another and are counted "
            f"once: {', '.join(str(r.folder) for r in duplicates)}"
        )
    ordered = sorted(runs, key=lambda r: (_job_num(r.folder), str(r.folder)))
    return Sweep(ordered, notes)


def _metrics(path: Path, notes: list[str]) -> dict[str, Any]:
    """A run's metrics.json; one that is not a JSON object is named and counts as missing."""
    if not path.exists():
        return {}
    try:
        metrics = json.loads(path.read_text())
        if not isinstance(metrics, dict):
            raise ValueError(f"it holds {type(metrics).__name__}, not an object")
    except (OSError, ValueError) as exc:
        notes.append(f"{path} is damaged ({_one_line(exc)}); the run counts as missing")
        log.warning("%s is damaged; the run counts as missing", path)
        return {}
    return metrics


def _recorded_only(
    sweep_dir: Path,
    runs: list[Run],
    unplaced: list[Path],
    notes: list[str],
    left_out: Sequence[Run] = (),
) -> list[Run]:
    """Runs the sweep recorded whose folder holds no readable config: each placed in its
    cell by its recorded overrides over the config of a run that has one (the sweep varies
    exactly those keys; a group's option is its ``<group>.name``)."""
    from adaptrun.sweep.jobs import read_records

    seen = {r.folder.resolve() for r in [*runs, *left_out]}
    template = runs[0].config if runs else None
    extra = []
    for num, record in sorted(read_records(sweep_dir).items()):
        folder = _here(Path(record.get("run_dir") or f"job {num}"), sweep_dir)
        if folder.resolve() in seen:
            continue
        if template is None:
            notes.append(f"job {num} ({record.get('overrides', '')}): no run to place it beside")
            continue
        config = dict(template)
        for override in str(record.get("overrides", "")).split():
            key, _, value = override.lstrip("+").partition("=")
            config[f"{key}.name" if f"{key}.name" in config else key] = _value(value)
        metrics = _metrics(folder / "metrics.json", notes) if folder.is_dir() else {}
        if not metrics:
            outcome = record.get("outcome") or "missing"
            status = "not started" if "not started" in str(record.get("error")) else outcome
            metrics = {"status": status, "error": record.get("error")}
        extra.append(Run(folder, config, metrics))
    for folder in unplaced:
        if folder.resolve() not in {r.folder.resolve() for r in extra}:
            notes.append(f"{folder}: its config is damaged and the sweep has no record of it")
    return extra


def applied(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config without the settings its activation family applies to nothing
    (the fixed network's ``n``): a sweep over n trains that network once per n, and it
    is then one baseline (one column, its repeats counted once), not one per n."""
    section = {k.split(".", 1)[1]: v for k, v in config.items() if k.startswith("activation.")}
    inert = {f"activation.{key}" for key in inert_settings(section)}
    return {k: v for k, v in config.items() if k not in inert}


def _here(run_dir: Path, sweep_dir: Path) -> Path:
    """A recorded run folder, in this sweep folder even when the sweep was moved or copied
    since (the record holds the path it had then)."""
    try:
        run_dir.resolve().relative_to(sweep_dir.resolve())
    except ValueError:
        return sweep_dir / run_dir.name
    return run_dir


def _value(text: str) -> Any:
    """An override's value as the config holds it (1 -> 1, 0.5 -> 0.5, relu -> 'relu')."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _distinct(runs: list[Run]) -> tuple[list[Run], list[Run]]:
    """The runs with one per (config, seed); the later repeats."""
    kept: dict[str, Run] = {}
    repeats = []
    for run in runs:
        key = json.dumps({k: v for k, v in run.config.items() if k not in IGNORED}, sort_keys=True)
        if key in kept:
            repeats.append(run)
        else:
            kept[key] = run
    return list(kept.values()), repeats


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:200]


def _resolved(config: Any) -> dict[str, Any]:
    """The saved config, flat, each interpolation resolved (``activation.n`` as the number
    a preset's ``${slope_defaults.n}`` gave it, so runs label and group by what ran), or
    kept as written where it cannot be resolved outside its run (a resolver of Hydra's)."""
    flat = flat_config(plain(config, resolve=False))
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
    return [k for k in differing([r.config for r in runs]) if k not in IGNORED]


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
    """True when ``key``'s value is fixed by the ``by`` keys, so it adds nothing to a label."""
    return follows(key, by, [run.config for run in runs])


def label(config: Mapping[str, Any], keys: Sequence[str], short: int) -> str:
    """The first ``short`` keys by value alone (``mlp/digits``), the rest as key=value."""
    head = [str(config.get(k)) for k in keys[:short]]
    tail = [f"{k.split('.', 1)[-1]}={config[k]}" for k in keys[short:] if k in config]
    return "/".join(head) + (f" ({', '.join(tail)})" if tail else "")
