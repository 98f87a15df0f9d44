"""``hydra/sweeper=tuned``: every column of the sweep gets the same search of the tuned
keys (``tune.<key>=<list, range or interval>``) on tuning seeds with a validation split
and no test split, then its evaluation seeds train at the candidate it chose. Both
phases are stacked as ``hydra/sweeper=stacked`` stacks; the search is in
adaptrun.sweep.tuning, and its record in the sweep folder's tuning.json and tuning.md.

(No ``from __future__ import annotations``: Hydra loads plugin modules without
registering them in sys.modules, where dataclasses look string annotations up.)"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from adaptrun.config.plan import run_folder
from adaptrun.core.interrupt import STOP
from adaptrun.sweep import tuning
from hydra_plugins.adaptrun_stacked_sweeper.stacked_sweeper import (
    StackedSweeper,
    StackedSweeperConf,
)

log = logging.getLogger(__name__)


@dataclass
class TunedSweeperConf(StackedSweeperConf):
    """The stacking sweeper's keys, and the search's."""

    _target_: str = "hydra_plugins.adaptrun_stacked_sweeper.tuned_sweeper.TunedSweeper"
    budget: int = 6  # candidates per interval-tuned key (a list or range: its values)
    seeds: int = 3  # tuning seeds per candidate
    first_seed: int = 1000  # the tuning seeds: first_seed, first_seed + 1, ...


ConfigStore.instance().store(
    group="hydra/sweeper", name="tuned", node=TunedSweeperConf, provider="adaptrun"
)


class TunedSweeper(StackedSweeper):
    """The stacking sweeper, twice: the search, then the evaluation at each choice."""

    def __init__(
        self,
        max_stack: int = 16,
        budget: int = 6,
        seeds: int = 3,
        first_seed: int = 1000,
        params: dict[str, str] | None = None,
    ) -> None:
        super().__init__(max_stack=max_stack, params=params)
        self.options = {"budget": budget, "seeds": seeds, "first_seed": first_seed}

    @staticmethod
    def checked_jobs(
        overrides: Sequence[str], options: Any, compose: tuning.Compose
    ) -> list[list[str]]:
        """What adaptrun's sweep check composes before anything starts: every tuning run,
        and every evaluation run at its column's first candidate (the others differ only
        in the tuned values, which the tuning runs check)."""
        params = [f"{k}={v}" for k, v in (options.get("params") or {}).items()]
        parsed = OverridesParser.create().parse_overrides([*params, *overrides])
        tuned, rest = tuning.split_tuned(parsed)
        columns, search, runs = tuning.planned(_combos(rest), tuned, options, compose)
        return runs + tuning.evaluation_runs(columns, [search.points[0]] * len(columns))

    def sweep(self, arguments: list[str]) -> Any:
        from adaptrun.sweep.jobs import record_outcome  # here: --help loads no torch

        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        loader = self.hydra_context.config_loader
        parser = OverridesParser.create(config_loader=loader)
        tuned, rest = tuning.split_tuned(
            parser.parse_overrides([*self._parse_config(), *arguments])
        )
        combos = [job for batch in self.split_arguments(rest, None) for job in batch]
        config = self.config

        def compose(overrides: list[str]) -> Any:
            return loader.load_sweep_config(config, overrides)

        columns, search, runs = tuning.planned(combos, tuned, self.options, compose)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        exclude = list(self.config.hydra.job.config.override_dirname.exclude_keys)
        log.info(
            "tuning %s: %d columns x %d candidates x %d seeds = %d runs",
            ", ".join(search.keys), len(columns), len(search.points), len(search.seeds), len(runs),
        )  # fmt: skip
        results = [self.launch_stacked(runs, range(len(runs)), tuning.FOLDER)]
        if STOP:  # nothing chosen from a partial search: the same command resumes it
            return results
        folders = [
            sweep_dir / tuning.FOLDER / run_folder(combo, num, exclude)
            for num, combo in enumerate(runs)
        ]
        choices = tuning.choose(columns, search, folders)
        tuning.write_records(sweep_dir, search, choices)
        points = [c.chosen or search.points[0] for c in choices]
        full = runs + tuning.evaluation_runs(columns, points)
        nums, first = [], len(runs)
        for choice in choices:
            seeds = len(choice.column.seeds) or 1
            mine = range(first, first + seeds)
            first += seeds
            if choice.chosen is not None:
                nums += mine
                continue
            for num in mine:  # recorded now: the summary counts them, nothing trains them
                folder = sweep_dir / run_folder(full[num], num, exclude)
                error = f"not trained: tuning of its column found nothing ({choice.why})"
                record_outcome(sweep_dir, num, folder, "failed", error, " ".join(full[num]))
        if nums:
            log.info("evaluating each column's choice: %d runs (%s)", len(nums), tuning.TABLE)
            results.append(self.launch_stacked(full, nums, first=len(results[0])))
        return results


def _combos(overrides: Sequence[Any]) -> list[list[str]]:
    """The basic sweeper's combinations of parsed overrides, without a sweeper object."""
    from adaptrun.sweep.jobs import expand

    return expand([o.input_line for o in overrides])
