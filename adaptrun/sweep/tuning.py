"""The search of ``hydra/sweeper=tuned``: every column of a sweep (each combination of
its keys other than the seed and the tuned keys) gets the same candidates of the tuned
keys, trained on the same tuning seeds with a validation split and without the test
split; the candidate with the best validation mean is the column's choice, at which its
evaluation seeds train and are tested.

The tuning seeds are their own (``first_seed`` on, never an evaluation seed), so the
choice and the test of it do not share a draw of the data or the initial weights.
Pure planning and bookkeeping: the sweeper in hydra_plugins launches what this plans.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.override_parser.types import Override

from adaptrun.config.plan import key_of
from adaptrun.core.errors import UserError
from adaptrun.core.files import write_text_atomic

PREFIX = "tune."  # tune.<key>=<sweep>: a key to tune and its candidates
FOLDER = "tune/"  # the tuning runs' folders, inside the sweep's
RECORD = "tuning.json"
TABLE = "tuning.md"
NO_TEST = "trainer.test=false"  # tuning runs never hold nor score the test split
# nor draw figures (about a second a run, for trials nobody looks at)
NO_FIGURES = ("trainer.figures=false", "trainer.figures_at=[]")


def split_tuned(overrides: Sequence[Override]) -> tuple[list[Override], list[Override]]:
    """(the tuned keys' overrides, every other override)."""
    tuned = [o for o in overrides if o.get_key_element().startswith(PREFIX)]
    return tuned, [o for o in overrides if o not in tuned]


def candidates(override: Override, budget: int) -> list[str]:
    """A tuned key's candidate values as overrides of the key itself: a list or range as
    given; an interval as ``budget`` evenly spaced points, on a log scale when tagged
    ``log`` (``tag(log,interval(1e-4,3e-3))``), rounded to 3 significant digits so each
    folder and record shows the value that ran."""
    key = override.get_key_element().removeprefix(PREFIX)
    if override.is_discrete_sweep():
        return [f"{key}={value}" for value in override.sweep_string_iterator()]
    if not override.is_interval_sweep():
        raise UserError(
            f"{override.get_key_element()}: give its candidates as a list (a,b,c), a "
            f"range(...) or an interval(low,high) (got {override.get_value_element_as_str()})"
        )
    interval: Any = override.value()
    low, high = float(interval.start), float(interval.end)
    log = "log" in interval.tags
    if not low < high or (log and low <= 0):
        need = "0 < low < high" if log else "low < high"
        raise UserError(f"{override.get_key_element()}: the interval needs {need}")
    points = np.geomspace(low, high, budget) if log else np.linspace(low, high, budget)
    return [f"{key}={float(f'{p:.3g}')!r}" for p in points]


@dataclass(frozen=True)
class Search:
    """The candidates (each the tuned keys' overrides) and the tuning seeds."""

    points: list[list[str]]
    seeds: list[int]

    @property
    def keys(self) -> list[str]:
        return [key_of(o) for o in self.points[0]]


def search_of(tuned: Sequence[Override], budget: int, seeds: int, first_seed: int) -> Search:
    """The grid of every tuned key's candidates (``budget`` points per interval)."""
    if not tuned:
        raise UserError(
            "hydra/sweeper=tuned: nothing to tune; name a key and its candidates, e.g. "
            "tune.optimizer.lr='tag(log,interval(1e-4,3e-3))'"
        )
    counts = {"budget": (budget, 1), "seeds": (seeds, 1), "first_seed": (first_seed, 0)}
    for name, (value, least) in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise UserError(f"hydra.sweeper.{name}: must be an integer >= {least} (got {value!r})")
    grid = itertools.product(*(candidates(o, budget) for o in tuned))
    return Search([list(point) for point in grid], list(range(first_seed, first_seed + seeds)))


@dataclass
class Column:
    """One column of the sweep: its overrides (seed left out), its evaluation seeds'
    overrides (none: the config's seed), and the validation override of its task."""

    common: list[str]
    seeds: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    metric: str = ""  # the validation metric that chooses, e.g. val_rel_l2
    goal: str = "min"


def columns_of(combos: Sequence[Sequence[str]]) -> list[Column]:
    """The sweep's combinations grouped into columns, in the order they first appear."""
    found: dict[tuple[str, ...], Column] = {}
    for combo in combos:
        common = [o for o in combo if key_of(o) != "seed"]
        column = found.setdefault(tuple(common), Column(common))
        column.seeds += [o for o in combo if key_of(o) == "seed"]
    return list(found.values())


def check_seeds(columns: Sequence[Column], search: Search) -> None:
    """Refuse evaluation seeds among the tuning seeds: the choice would be tested on the
    draw it was made on."""
    tuning = set(search.seeds)
    for column in columns:
        shared = sorted(tuning & {int(o.split("=", 1)[1]) for o in column.seeds})
        if shared:
            raise UserError(
                f"seed: {', '.join(map(str, shared))} are also tuning seeds (hydra.sweeper."
                f"first_seed={search.seeds[0]}, seeds={len(search.seeds)}); evaluate on "
                "other seeds or move the tuning seeds with hydra.sweeper.first_seed"
            )


def tuning_runs(columns: Sequence[Column], search: Search) -> list[list[str]]:
    """Every column x candidate x tuning seed, in that order."""
    return [
        [*c.common, *c.validation, NO_TEST, *NO_FIGURES, *point, f"seed={seed}"]
        for c in columns
        for point in search.points
        for seed in search.seeds
    ]


def evaluation_runs(columns: Sequence[Column], chosen: Sequence[Sequence[str]]) -> list[list[str]]:
    """Every column's evaluation seeds at its chosen candidate."""
    return [
        [*c.common, *point, *([seed] if seed else [])]
        for c, point in zip(columns, chosen, strict=True)
        for seed in (c.seeds or [""])
    ]


@dataclass
class Choice:
    """One column's search: each candidate's validation values over the tuning seeds."""

    column: Column
    scores: list[dict[str, Any]]  # per candidate: point, values, mean, std, missing
    chosen: list[str] | None
    why: str = ""  # why nothing was chosen


def choose(columns: Sequence[Column], search: Search, folders: Sequence[Path]) -> list[Choice]:
    """Each column's candidate with the best mean validation metric over the tuning
    seeds (its final value). A diverged run scores the worst possible value (its mean
    cannot win); a candidate with a run that recorded nothing cannot be chosen."""
    per_column = len(search.points) * len(search.seeds)
    choices = []
    for c, column in enumerate(columns):
        scores: list[dict[str, Any]] = []
        for p, point in enumerate(search.points):
            start = c * per_column + p * len(search.seeds)
            values, missing = [], []
            for folder in folders[start : start + len(search.seeds)]:
                value = _validation(folder, column.metric, column.goal)
                (missing.append(folder.name) if value is None else values.append(value))
            finite = [v for v in values if math.isfinite(v)]
            scores.append({
                "point": point,
                "values": values,
                "mean": statistics.fmean(values) if values and not missing else None,
                "std": statistics.stdev(finite) if len(finite) > 1 else None,
                "diverged": len(values) - len(finite),
                "missing": missing,
            })  # fmt: skip
        ranked = [s for s in scores if s["mean"] is not None]
        if not ranked:
            choices.append(Choice(column, scores, None, "no candidate finished its tuning runs"))
            continue
        sign = -1.0 if column.goal == "max" else 1.0
        best = min(ranked, key=lambda s: sign * s["mean"])
        choices.append(Choice(column, scores, list(best["point"])))
    return choices


def _validation(folder: Path, metric: str, goal: str) -> float | None:
    """A tuning run's final validation value; a diverged run the worst; None if it
    recorded nothing usable (failed, stopped, missing)."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict):
        return None
    if metrics.get("status") == "diverged":
        return -math.inf if goal == "max" else math.inf
    value = metrics.get(f"final_{metric}")
    if metrics.get("status") != "completed" or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else (-math.inf if goal == "max" else math.inf)


def write_records(sweep_dir: Path, search: Search, choices: Sequence[Choice]) -> None:
    """tuning.json (every candidate's values, the choice) and tuning.md (a table per
    column), in the sweep folder."""
    record = {
        "tuned": search.keys,
        "candidates": len(search.points),
        "tuning_seeds": search.seeds,
        "columns": [
            {
                "overrides": choice.column.common,
                "metric": choice.column.metric,
                "goal": choice.column.goal,
                "validation": choice.column.validation,
                "candidates": [_jsonable(s) for s in choice.scores],
                "chosen": choice.chosen,
                **({"error": choice.why} if choice.why else {}),
            }
            for choice in choices
        ],
    }
    write_text_atomic(sweep_dir / RECORD, json.dumps(record, indent=2) + "\n")
    write_text_atomic(sweep_dir / TABLE, render(search, choices))


def _jsonable(score: Mapping[str, Any]) -> dict[str, Any]:
    """Infinities (diverged runs) as null, which JSON has."""

    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return {k: ([clean(x) for x in v] if k == "values" else clean(v)) for k, v in score.items()}


def render(search: Search, choices: Sequence[Choice]) -> str:
    """The search as markdown: per column, each candidate's validation mean and spread
    over the tuning seeds, the chosen one marked."""
    seeds = ", ".join(map(str, search.seeds))
    lines = [
        "# Tuning",
        "",
        f"Tuned: {', '.join(search.keys)}; {len(search.points)} candidates per column, each "
        f"trained on tuning seeds {seeds} with a validation split and without the test split "
        "(trainer.test=false); the best mean of the final validation metric is chosen.",
    ]
    for choice in choices:
        column = choice.column
        lines += [
            "",
            f"## {' '.join(column.common) or '(no overrides)'}",
            "",
            f"Chosen by final {column.metric} ({'higher' if column.goal == 'max' else 'lower'} "
            f"is better); validation: {' '.join(column.validation) or 'as configured'}.",
            "",
            f"| {' | '.join(search.keys)} | mean | std | runs | diverged | chosen |",
            "|" + "---|" * (len(search.keys) + 5),
        ]
        for score in choice.scores:
            values = [o.split("=", 1)[1] for o in score["point"]]
            mean = "" if score["mean"] is None else f"{score['mean']:.4g}"
            std = "" if score["std"] is None else f"{score['std']:.2g}"
            runs = len(score["values"])
            mark = "**chosen**" if score["point"] == choice.chosen else ""
            if score["missing"]:
                mark = f"not finished: {len(score['missing'])}"
            lines.append(
                f"| {' | '.join(values)} | {mean} | {std} | {runs} | {score['diverged']} | {mark} |"
            )
        if choice.why:
            lines += ["", f"Nothing chosen: {choice.why}; its evaluation runs failed."]
        elif len(search.points) > 2 and choice.chosen in (search.points[0], search.points[-1]):
            lines += ["", "The choice is the first or last candidate: the best value may lie "
                      "outside the search; widen it to know."]  # fmt: skip
    return "\n".join(lines) + "\n"


Compose = Callable[[list[str]], Any]  # a job's overrides -> its composed config


def prepare(columns: Sequence[Column], search: Search, compose: Compose) -> None:
    """Set each column's validation override and choosing metric from its task: the
    task's own way to hold out validation data (``TaskEntry.validation``) unless the
    column's config already has one. A column whose config does not compose is left as
    it is: the sweep's check names its problem."""
    from omegaconf import OmegaConf

    from adaptrun.tasks import TASKS

    for column in columns:
        try:
            cfg = compose([*column.common, *search.points[0]])
            entry = TASKS[str(cfg.task.name)]
        except Exception:  # refused with its own message by the sweep's check
            continue
        if entry.tuned_by is None or entry.validation is None:
            raise UserError(
                f"hydra/sweeper=tuned: task {entry.name} has no validation split to tune on "
                f"(in: {' '.join(column.common)})"
            )
        key, value = entry.validation
        has = OmegaConf.select(cfg, key)
        column.validation = [] if has else [f"{key}={value}"]
        column.metric, column.goal = entry.tuned_by, entry.goals[entry.primary]  # its twin


def planned(
    combos: Sequence[Sequence[str]],
    tuned: Sequence[Override],
    options: Mapping[str, Any],
    compose: Compose,
) -> tuple[list[Column], Search, list[list[str]]]:
    """The columns, the search and every tuning run of a sweep (``options``: the
    sweeper's budget, seeds and first_seed)."""
    search = search_of(
        tuned, options.get("budget", 6), options.get("seeds", 3), options.get("first_seed", 1000)
    )
    columns = columns_of(combos)
    check_seeds(columns, search)
    prepare(columns, search, compose)
    return columns, search, tuning_runs(columns, search)
