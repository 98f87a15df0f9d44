"""How ``hydra/sweeper=stacked`` turns a multirun's combinations into stacked jobs.

Combinations that differ only in stackable keys become one job that trains them as one
stacked model (adaptrun.training.stacked); every run still gets the folder, config, metrics.json,
events and hparams the basic sweeper would give it. What may differ within a stack:

- ``seed``: each run's initialisation and batch order;
- ``activation.n``: a slope activation's scale, carried per run as a buffer;
- ``activation.slope_recovery``: its weight, per run, among nonzero values (zero means
  no recovery term at all: those runs stack among themselves).

Everything else changes the model, data or optimizer and splits the stack. The job
carries its runs in one override, ``+adaptrun_stack=[[num, folder, overrides...], ...]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from adaptrun.config.resolvers import folder_name

STACKABLE = ("seed", "activation.n", "activation.slope_recovery")
PLAN_KEY = "adaptrun_stack"


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


@dataclasses.dataclass
class StackedJob:
    """One job: the overrides its runs share, and each run's number and own overrides."""

    common: list[str]
    nums: list[int]
    own: list[list[str]]

    def overrides(self, combos: Sequence[Sequence[str]], exclude: Sequence[str]) -> list[str]:
        """The job's overrides for the launcher: a lone combination as it is; a stack as
        its common part, the plan and its own folder (``stack-<first num>x<runs>``)."""
        if len(self.nums) == 1:
            return list(combos[self.nums[0]])
        runs = [
            [num, run_folder(combos[num], num, exclude), *own]
            for num, own in zip(self.nums, self.own, strict=True)
        ]
        plan = "[" + ",".join("[" + ",".join(_quote(v) for v in run) + "]" for run in runs) + "]"
        subdir = f"hydra.sweep.subdir=stack-{self.nums[0]}x{len(self.nums)}"
        return [*self.common, f"+{PLAN_KEY}={plan}", subdir]


def _quote(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "\\'") + "'"  # Hydra's quoted string


def _stack_class(override: str) -> str:
    """What must be equal within a stack besides the common overrides: whether a
    slope-recovery term exists (its weight is zero or not)."""
    if key_of(override) != "activation.slope_recovery":
        return ""
    try:
        return "recovery" if float(override.split("=", 1)[1]) > 0 else "none"
    except ValueError:
        return "?" + override  # not a number: the check will refuse it; keep it alone


def plan(combos: Sequence[Sequence[str]], max_stack: int) -> list[StackedJob]:
    """Group the combinations (the basic sweeper's jobs, in its order) into stacks of at
    most ``max_stack`` runs that differ only in stackable keys."""
    groups: dict[tuple[str, ...], StackedJob] = {}
    for num, combo in enumerate(combos):
        common = [o for o in combo if key_of(o) not in STACKABLE]
        own = [o for o in combo if key_of(o) in STACKABLE]
        group = (*common, *(c for o in own if (c := _stack_class(o))))
        groups.setdefault(group, StackedJob(common, [], [])).nums.append(num)
        groups[group].own.append(own)
    jobs = []
    for job in groups.values():
        for start in range(0, len(job.nums), max_stack):
            chunk = slice(start, start + max_stack)
            jobs.append(StackedJob(job.common, job.nums[chunk], job.own[chunk]))
    return jobs


def with_values(cfg: Any, own: Sequence[str]) -> Any:
    """``cfg`` (changed in place) with a run's stackable overrides applied as Hydra applies
    them: typed values from its override parser, checked against the config's schema.
    Stackable keys hold plain values, so this gives what composing the run would."""
    for override in OverridesParser.create().parse_overrides(list(own)):
        OmegaConf.update(cfg, override.key_or_group, override.value(), merge=False)
    return cfg


def run_folder(combo: Sequence[str], num: int, exclude: Sequence[str]) -> str:
    """The folder the basic sweeper gives this combination under adaptrun's default
    ``hydra.sweep.subdir`` (its overrides, sorted; Hydra's override_dirname)."""
    lines = sorted(o for o in combo if key_of(o) not in exclude)
    return folder_name(",".join(lines), str(num))


def runs_of(cfg: Any) -> list[tuple[int, str, list[str]]]:
    """A stacked job's runs from its config: (number, folder, own overrides) each."""
    return [(int(run[0]), str(run[1]), [str(o) for o in run[2:]]) for run in cfg[PLAN_KEY]]
