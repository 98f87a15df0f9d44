"""Multirun bookkeeping: the jobs a sweep holds, a check of each before any trains, what
became of each, and the summary printed and saved at the end.

Each job writes its outcome to ``<sweep>/.adaptrun/outcomes/<job number>.json`` from
whatever process runs it (in-process, joblib worker, submitit job), so the summary
works the same with every launcher.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from adaptrun.config import plan as stacking
from adaptrun.config.check import check_config
from adaptrun.core.errors import config_problem
from adaptrun.core.files import refuse_link
from adaptrun.core.messages import hydra_error, one_line
from adaptrun.records.track import write_json_atomic

log = logging.getLogger(__name__)

OUTCOMES = (
    "completed", "diverged", "failed", "interrupted", "skipped", "not started", "missing"
)  # fmt: skip
BAD = ("failed", "interrupted", "missing")  # any of these makes the sweep exit non-zero
SUMMARY = "summary.md"


def outcomes_dir(sweep_dir: Path) -> Path:
    return Path(sweep_dir) / ".adaptrun" / "outcomes"


def expand(
    task_overrides: Sequence[str], params: Mapping[str, str] | None = None
) -> list[list[str]]:
    """Every job's overrides, in the order (and so with the numbers) Hydra's basic sweeper
    uses: the product of each key's values, a later override of a key replacing an
    earlier one. Hand-written on Hydra's public override parser: the sweeper's own
    split_arguments lives in hydra._internal."""
    arguments = [f"{k}={v}" for k, v in (params or {}).items()] + list(task_overrides)
    choices: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            kind = override.value_type.name if override.value_type else "this"
            raise HydraException(f"the basic sweeper does not support sweep type {kind}")
    return [list(job) for job in itertools.product(*choices.values())]


class Problem(NamedTuple):
    """A job that cannot work: its overrides, and why."""

    job: str
    reason: str

    def __str__(self) -> str:
        return f"{self.job}: {self.reason}"


def _job(overrides: Sequence[str]) -> str:
    return " ".join(overrides) or "(no overrides)"


def refusal(problems: Sequence[Problem], total: int) -> str:
    """What the sweep prints when jobs cannot work: one line when they share one reason
    (one mistake on the command line), else a line per reason with its jobs."""
    head = f"{len(problems)} of {total} runs in this sweep cannot work; nothing was started"
    reasons: dict[str, list[str]] = {}
    for problem in problems:
        reasons.setdefault(problem.reason, []).append(problem.job)
    if len(reasons) == 1:
        [(reason, jobs)] = reasons.items()
        return f"{head}: {reason} (in: {'; '.join(jobs)})"
    lines = [f"{reason} (in: {'; '.join(jobs)})" for reason, jobs in reasons.items()]
    return f"{head}:\n  " + "\n  ".join(lines)


def preflight(
    config_name: str,
    jobs: Sequence[Sequence[str]],
    search: Sequence[str] = (),
    stacked: bool = False,
) -> tuple[list[Problem], list[DictConfig]]:
    """One line per job whose composed config cannot work (its overrides and why), and
    the configs of those that can. ``search``: the sweep's hydra.searchpath overrides
    (the user's own config options). ``stacked``: the stacking sweeper's jobs. Two jobs
    that would train the same run (config and seed) are refused too.

    Jobs that differ only in stackable keys (seeds, a slope's n) are composed once and
    the others derived from that config, as a stacked job derives its runs': Hydra's
    compose takes a quarter of a second, which a 60-run sweep paid 60 times before
    starting. A group whose first job does not compose is composed job by job, so each
    gets its own message."""
    problems: dict[int, Problem] = {}
    configs: dict[int, DictConfig] = {}
    for group in stacking.plan(jobs, max(1, len(jobs))):
        base = _compose(config_name, jobs[group.nums[0]], search)
        for num, own in zip(group.nums, group.own, strict=True):
            try:
                if isinstance(base, DictConfig):
                    composed = stacking.with_values(copy.deepcopy(base), own)
                else:
                    composed = compose(config_name=config_name, overrides=[*search, *jobs[num]])
                check_config(composed)
                configs[num] = composed
            except (HydraException, OmegaConfBaseException) as exc:
                problems[num] = Problem(_job(jobs[num]), hydra_error(exc))
                continue
            except Exception as exc:  # a check that met a value it cannot read: refused too
                reason = one_line(config_problem(exc))
                problems[num] = Problem(_job(jobs[num]), reason)
    if stacked:  # the stacking sweeper stacks the runs itself
        for num, cfg in configs.items():
            if cfg.trainer.stack != 1:
                problems[num] = Problem(
                    _job(jobs[num]),
                    "trainer.stack: hydra/sweeper=stacked stacks the sweep's runs itself; "
                    "use trainer.stack=1 and sweep seed=0,1,...",
                )
    problems.update(_repeated_runs(jobs, {n: c for n, c in configs.items() if n not in problems}))
    return [problems[n] for n in sorted(problems)], [configs[n] for n in sorted(configs)]


def _repeated_runs(
    jobs: Sequence[Sequence[str]], configs: Mapping[int, DictConfig]
) -> dict[int, Problem]:
    """Jobs that would train a run (a config and seed) that an earlier job trains too, as
    ``trainer.stack=2 seed=0,1`` does (seeds 0, 1 and 1, 2): counted twice, a report's
    interval would be too narrow."""
    from adaptrun.config.plan import run_configs
    from adaptrun.records.checkpoint import config_hash

    first: dict[str, tuple[int, int]] = {}
    problems = {}
    for num, cfg in sorted(configs.items()):
        for one in run_configs(cfg):
            key = config_hash(one)
            if key not in first:
                first[key] = (num, one.seed)
                continue
            earlier, seed = first[key]
            problems[num] = Problem(
                _job(jobs[num]),
                f"trains seed={seed} with the same config as job #{earlier} "
                f"({_job(jobs[earlier])}); a run counted twice narrows every interval: make "
                "the seeds of a sweep distinct (with trainer.stack=R, step the seeds by R: "
                "seed=0,R,2R...)",
            )
            break
    return problems


def _compose(config_name: str, overrides: Sequence[str], search: Sequence[str]) -> Any:
    try:
        return compose(config_name=config_name, overrides=[*search, *overrides])
    except (HydraException, OmegaConfBaseException):
        return None


def record_outcome(
    sweep_dir: Path,
    job_num: int,
    run_dir: Path,
    outcome: str,
    error: str | None,
    overrides: str = "",
) -> None:
    folder = outcomes_dir(sweep_dir)
    refuse_link(folder.parent)
    refuse_link(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"run_dir": str(run_dir), "outcome": outcome, "error": error, "overrides": overrides}
    write_json_atomic(folder / f"{job_num}.json", record)


def clear_outcomes(sweep_dir: Path) -> None:
    """Forget the outcomes of an earlier invocation of a sweep in this folder."""
    folder = outcomes_dir(sweep_dir)
    refuse_link(folder.parent)  # a link here would have us delete another folder's files
    refuse_link(folder)
    if folder.is_dir():
        for path in folder.glob("*.json"):
            if not path.is_symlink() and path.is_file():
                path.unlink()


@dataclass(frozen=True)
class Job:
    num: int
    overrides: str
    outcome: str
    run_dir: str
    error: str | None


def collect(
    sweep_dir: Path, jobs: Sequence[Sequence[str]] | None, stopped: str | None = None
) -> list[Job]:
    """Each job with its recorded outcome; a job that recorded none is ``missing``, or,
    when a stop signal (``stopped``: its name) ended the sweep, ``not started``: the
    sweep stopped before launching it, which running the command again does.

    ``jobs`` None (a sweeper other than Hydra's basic one chose the jobs as it went):
    the jobs that recorded an outcome, in job order.
    """
    records = read_records(sweep_dir)
    if jobs is None:
        numbered = [(n, records[n].get("overrides", "").split()) for n in sorted(records)]
    else:
        numbered = list(enumerate(jobs))
    found = []
    for num, overrides in numbered:
        record = records.get(num, {})
        never = f"the sweep was stopped by {stopped} before this job started"
        unrecorded = (
            ("not started", never) if stopped else ("missing", "the job recorded no outcome")
        )
        outcome = record.get("outcome", unrecorded[0])
        error = record.get("error") or (None if record else unrecorded[1])
        found.append(Job(num, " ".join(overrides), outcome, record.get("run_dir", ""), error))
    return found


def read_records(sweep_dir: Path) -> dict[int, dict[str, Any]]:
    """The outcome records by job number; a damaged one (not JSON, not an object, a
    link) counts as that job's ``missing`` outcome, with why."""
    records: dict[int, dict[str, Any]] = {}
    folder = outcomes_dir(sweep_dir)
    if folder.is_symlink() or folder.parent.is_symlink():
        return records
    for path in folder.glob("*.json"):
        if not path.stem.isdigit():
            continue
        try:
            if path.is_symlink():
                raise ValueError("a symbolic link")
            record = json.loads(path.read_text())
            if not isinstance(record, dict):
                raise ValueError(f"{type(record).__name__}, not an object")
        except (OSError, ValueError) as exc:
            why = " ".join(str(exc).split())
            record = {"outcome": "missing", "error": f"its outcome record is damaged ({why})"}
        records[int(path.stem)] = record
    return records


def counts(jobs: Sequence[Job]) -> dict[str, int]:
    return {o: sum(j.outcome == o for j in jobs) for o in OUTCOMES}


def render(sweep_dir: Path, jobs: Sequence[Job]) -> str:
    """The markdown summary: counts, then one row per run (errors on one line)."""
    tally = counts(jobs)
    lines = [
        f"# Sweep summary: {sweep_dir}",
        "",
        "| " + " | ".join(OUTCOMES) + " | total |",
        "|" + "---|" * (len(OUTCOMES) + 1),
        "| " + " | ".join(str(tally[o]) for o in OUTCOMES) + f" | {len(jobs)} |",
        "",
        "| # | outcome | overrides | folder | error |",
        "|---|---|---|---|---|",
    ]
    for job in jobs:
        folder = _relative(job.run_dir, sweep_dir)
        error = _one_line(job.error) if job.outcome in (*BAD, "not started") else ""
        lines.append(f"| {job.num} | {job.outcome} | {job.overrides} | {folder} | {error} |")
    return "\n".join(lines) + "\n"


def console_summary(sweep_dir: Path, jobs: Sequence[Job]) -> str:
    """A few lines for the terminal: the counts, then each run that did not finish."""
    tally = counts(jobs)
    shown = ", ".join(f"{tally[o]} {o}" for o in OUTCOMES if tally[o])
    lines = [f"sweep of {len(jobs)} runs: {shown} (table: {Path(sweep_dir) / SUMMARY})"]
    for job in jobs:
        if job.outcome in (*BAD, "not started"):
            where = _relative(job.run_dir, sweep_dir) or job.overrides
            lines.append(f"  {job.outcome}: {where}: {_one_line(job.error)}")
    return "\n".join(lines)


def _relative(run_dir: str, sweep_dir: Path) -> str:
    if not run_dir:
        return ""
    try:
        return str(Path(run_dir).resolve().relative_to(Path(sweep_dir).resolve()))
    except ValueError:
        return run_dir


def _one_line(text: str | None, limit: int = 300) -> str:
    line = " ".join((text or "").split()).replace("|", "/")
    return line if len(line) <= limit else line[: limit - 3] + "..."
