"""``hydra/sweeper=stacked``: the basic sweeper's combinations, with those that differ
only in stackable keys (the seed, and settings a family carries per run such as the
slope family's activation.n and activation.slope_recovery) launched as one
stacked job each, through whatever launcher is configured. The grouping is
adaptrun.config.plan's; a Hydra sweeper must live in the hydra_plugins package.

(No ``from __future__ import annotations``: Hydra loads plugin modules without
registering them in sys.modules, where dataclasses look string annotations up.)"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional  # noqa: UP035 (OmegaConf reads these types)

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from adaptrun.config.plan import StackedJob, plan, run_folder, split_ended
from adaptrun.records.history import ended

log = logging.getLogger(__name__)


@dataclass
class StackedSweeperConf:
    _target_: str = "hydra_plugins.adaptrun_stacked_sweeper.stacked_sweeper.StackedSweeper"
    max_stack: int = 16  # runs per stacked job at most: bounds its memory
    params: Optional[Dict[str, str]] = None  # noqa: UP006, UP045 (OmegaConf reads these types)


ConfigStore.instance().store(
    group="hydra/sweeper", name="stacked", node=StackedSweeperConf, provider="adaptrun"
)


class StackedSweeper(BasicSweeper):
    """Every combination of the basic sweeper, as fewer jobs."""

    stacks_runs = True  # what adaptrun's sweep checks ask of a sweeper (max_stack, the plan)

    def __init__(self, max_stack: int = 16, params: dict[str, str] | None = None) -> None:
        super().__init__(max_batch_size=None, params=params)
        if not isinstance(max_stack, int) or max_stack < 1:
            raise ValueError(f"hydra.sweeper.max_stack must be an integer >= 1 (got {max_stack!r})")
        self.max_stack = max_stack

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        assert self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides([*self._parse_config(), *arguments])
        combos = [job for batch in self.split_arguments(overrides, None) for job in batch]
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        return [self.launch_stacked(combos, range(len(combos)))]

    def launch_stacked(
        self, full: list[list[str]], nums: Sequence[int], under: str = "", first: int = 0
    ) -> Any:
        """Launch runs ``nums`` of ``full`` (every run of the sweep, numbered) as stacked
        jobs, in the sweep folder's ``under``; Hydra numbers the jobs from ``first``.
        Not checked by Hydra's validate_batch_is_legal: it composes every job once more (a
        quarter of a second each), after adaptrun's sweep check composed every run."""
        assert self.config is not None and self.launcher is not None
        exclude = list(self.config.hydra.job.config.override_dirname.exclude_keys)
        folder = Path(self.config.hydra.sweep.dir) / under
        planned = plan([full[n] for n in nums], self.max_stack)
        stacks = split_ended(
            planned, lambda i: ended(folder / run_folder(full[nums[i]], nums[i], exclude))
        )
        if len(stacks) > len(planned):
            split = len(stacks) - len(planned)  # each such run became a job of its own
            log.info("%d finished runs planned beside unfinished ones are skipped alone", split)
        batch = [
            StackedJob(s.common, [nums[i] for i in s.nums], s.own).overrides(full, exclude, under)
            for s in stacks
        ]
        log.info("%d runs in %d jobs (at most %d stacked)", len(nums), len(batch), self.max_stack)
        self.overrides = [batch]
        self.batch_index = 1
        return self.launcher.launch(batch, initial_job_idx=first)
