"""How ``hydra/sweeper=stacked`` turns a multirun's combinations into stacked jobs.

Combinations that differ only in stackable keys become one job that trains them as one
stacked model (adaptrun.training.stacked); every run still gets the folder, config, metrics.json,
events and hparams the basic sweeper would give it. What may differ within a stack:
``seed`` (each run's initialisation, data draw and batch order) and the activation settings
a family declares ``per_run`` (the slope family's ``n`` and ``slope_recovery``, the latter
among nonzero values). Everything else changes the model, data or optimizer and splits the
stack. The job
carries its runs in one override, ``+adaptrun_stack=[[num, folder, overrides...], ...]``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from adaptrun.config.resolvers import folder_name

PLAN_KEY = "adaptrun_stack"
# a lone combination's number in the sweep, for its outcome record: Hydra's launchers
# number jobs by their place in the batch, which stacks before it shift
RUN_NUM = "ADAPTRUN_RUN_NUM"
PLANNING = (PLAN_KEY, "trainer.stack")  # keys that say how runs are grouped, not what runs


def key_of(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


@dataclasses.dataclass
class StackedJob:
    """One job: the overrides its runs share, and each run's number and own overrides."""

    common: list[str]
    nums: list[int]
    own: list[list[str]]

    def overrides(
        self, combos: Sequence[Sequence[str]], exclude: Sequence[str], under: str = ""
    ) -> list[str]:
        """The job's overrides for the launcher: a lone combination as it is, with the
        folder and number the basic sweeper would give it; a stack as its common part,
        the plan and its own folder (``stack-<first num>x<runs>``). ``under``: a folder
        of the sweep's that holds them (the tuned sweeper's ``tune/``)."""
        if len(self.nums) == 1:
            num = self.nums[0]
            folder = under + run_folder(combos[num], num, exclude)
            where = [f"hydra.sweep.subdir={_quote(folder)}", f"+hydra.job.env_set.{RUN_NUM}={num}"]
            return [*combos[num], *where]
        runs = [
            [num, run_folder(combos[num], num, exclude), *own]  # beside the job's folder
            for num, own in zip(self.nums, self.own, strict=True)
        ]
        plan = "[" + ",".join("[" + ",".join(_quote(v) for v in run) + "]" for run in runs) + "]"
        subdir = f"hydra.sweep.subdir={under}stack-{self.nums[0]}x{len(self.nums)}"
        return [*self.common, f"+{PLAN_KEY}={plan}", subdir]


def _quote(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "\\'") + "'"  # Hydra's quoted string


def stackable() -> dict[str, Callable[[str], str] | None]:
    """The keys that may differ within a stack: the seed, every family's per-run settings,
    each with what must still be equal within one (see ActivationFamily), and the rate and
    weight decay where an optimizer takes them per run (its ``per_run_rates``; runs of
    another optimizer differ in ``optimizer`` and never share a stack)."""
    from adaptrun.activations import FAMILIES  # here: --help and --cfg load no torch
    from adaptrun.training.optim import OPTIMIZERS

    keys: dict[str, Callable[[str], str] | None] = {"seed": None}
    for family in FAMILIES.values():
        keys.update({f"activation.{key}": kind for key, kind in family.per_run.items()})
    if any(entry.capabilities.per_run_rates for entry in OPTIMIZERS.values()):
        keys.update({"optimizer.lr": None, "optimizer.weight_decay": None})
    return keys


def _stack_class(override: str, keys: Mapping[str, Callable[[str], str] | None]) -> str:
    """What must be equal within a stack besides the common overrides (a family's say)."""
    kind = keys.get(key_of(override))
    return "" if kind is None else f"{key_of(override)}:{kind(override.split('=', 1)[1])}"


def plan(combos: Sequence[Sequence[str]], max_stack: int) -> list[StackedJob]:
    """Group the combinations (the basic sweeper's jobs, in its order) into stacks of at
    most ``max_stack`` runs that differ only in stackable keys."""
    groups: dict[tuple[str, ...], StackedJob] = {}
    keys = stackable()
    for num, combo in enumerate(combos):
        common = [o for o in combo if key_of(o) not in keys]
        own = [o for o in combo if key_of(o) in keys]
        group = (*common, *(c for o in own if (c := _stack_class(o, keys))))
        groups.setdefault(group, StackedJob(common, [], [])).nums.append(num)
        groups[group].own.append(own)
    jobs = []
    for job in groups.values():
        for start in range(0, len(job.nums), max_stack):
            chunk = slice(start, start + max_stack)
            jobs.append(StackedJob(job.common, job.nums[chunk], job.own[chunk]))
    return jobs


def split_ended(jobs: Sequence[StackedJob], ended: Callable[[int], bool]) -> list[StackedJob]:
    """The jobs with each stack whose runs partly ended for good already (a sweep run
    again with more seeds, or another max_stack, regroups finished runs with new ones)
    split into its ended runs, each a lone job (which the runner checks against its
    config and skips), and one stack of the rest: a finished run is never trained again
    beside new ones. ``ended``: whether combination ``num`` did."""
    out: list[StackedJob] = []
    for job in jobs:
        done = [ended(num) for num in job.nums]
        if all(done) or not any(done):
            out.append(job)
            continue
        runs = list(zip(job.nums, job.own, done, strict=True))
        out += [StackedJob(job.common, [num], [own]) for num, own, d in runs if d]
        rest = [(num, own) for num, own, d in runs if not d]
        out.append(StackedJob(job.common, [n for n, _ in rest], [o for _, o in rest]))
    return out


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


class PlannedRun(NamedTuple):
    """One run of a job: its number in a stacked sweep (None outside one: the job's own
    runs), its folder (a swept run's beside the job's, in the sweep folder or its tune/;
    a seed's of trainer.stack within the job's; "" the job's own) and its own overrides."""

    num: int | None
    folder: str
    own: list[str]


def runs_of(cfg: Any) -> list[PlannedRun]:
    """A job's runs, as one plan: itself; with trainer.stack = R the seeds seed ..
    seed+R-1; for a job of the stacked sweeper, the combinations it carries."""
    if cfg.get(PLAN_KEY) is not None:
        return [PlannedRun(*run) for run in swept_runs(cfg)]
    seeds = range(cfg.seed, cfg.seed + int(cfg.trainer.stack))
    if len(seeds) == 1:
        return [PlannedRun(None, "", [])]
    return [PlannedRun(None, f"seed={k}", [f"seed={k}"]) for k in seeds]


def swept_runs(cfg: Any) -> list[tuple[int, str, list[str]]]:
    """A stacked sweeper's job's runs: (number, folder in the sweep's, own overrides)."""
    return [(int(r[0]), str(r[1]), [str(o) for o in r[2:]]) for r in cfg[PLAN_KEY]]


def run_configs(cfg: Any) -> list[Any]:
    """The configs of a job's runs (``runs_of``), each as a separate run of it has it."""
    return [planned_config(cfg, run.own) for run in runs_of(cfg)]


def planned_config(cfg: Any, own: Sequence[str]) -> Any:
    """The job's config without its plan, with one run's own overrides applied (the job's
    own config, itself, when it is its only run)."""
    if not own and cfg.get(PLAN_KEY) is None:
        return cfg
    one = copy.deepcopy(cfg)
    with open_dict(one):
        one.pop(PLAN_KEY, None)
    one.trainer.stack = 1
    return with_values(one, own)
