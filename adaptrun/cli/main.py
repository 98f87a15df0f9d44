"""The ``adaptrun`` command: Hydra composes the config, ``run`` does the work."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from adaptrun.config.options import config_dir, group_help, groups, help_text
from adaptrun.config.resolvers import register_resolvers
from adaptrun.core.errors import UserError, describe_error, disk_full
from adaptrun.core.interrupt import STOP, exit_if_orphaned, stop_with_the_sweep
from adaptrun.core.messages import hydra_error, one_line
from adaptrun.core.registry import load_plugins
from adaptrun.runner.threads import concurrent_jobs

log = logging.getLogger(__name__)

# Options that only print (help, the composed config, shell completion): they compose
# the config without the entries' typed schemas, so they never import torch.
PRINT_ONLY = {"--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "-i", "--version"}
PRINT_ONLY |= {"--shell-completion", "-sc"}


register_resolvers()
DISK_FULL: list[str] = []  # the run of this process's sweep that found the disk full
VERBOSE: list[bool] = []  # hydra.verbose=true: errors keep their traceback


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _main(cfg: DictConfig) -> dict[str, Any]:
    from adaptrun.runner.run import run  # torch and every registry: only when a run starts

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.verbose:
        VERBOSE.append(True)
    overrides = dict(o.split("=", 1) for o in hydra_cfg.overrides.task if "=" in o)
    run_dir = Path(hydra_cfg.runtime.output_dir)
    files = hydra_files(cfg)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        from adaptrun.config.plan import RUN_NUM

        sweep_dir = Path(hydra_cfg.sweep.dir)
        num = int(hydra_cfg.job.env_set.get(RUN_NUM, hydra_cfg.job.num))  # see RUN_NUM
        jobs = concurrent_jobs(hydra_cfg.launcher)
        return _sweep_job(cfg, run_dir, overrides, files, sweep_dir, num, jobs)
    try:
        metrics = run(cfg, run_dir, overrides, files)
    except UserError as exc:
        if hydra_cfg.verbose:  # hydra.verbose=true: the full traceback too
            raise
        print(f"adaptrun: error: {one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # recorded in metrics.json, the traceback in the run's log
        if hydra_cfg.verbose:
            raise
        print(
            f"adaptrun: error: run failed: {one_line(describe_error(exc))}; the traceback is in "
            f"{run_dir / 'adaptrun.log'}",
            file=sys.stderr,
        )
        sys.exit(1)
    if metrics["status"] == "diverged":
        print(
            f"adaptrun: run diverged: {metrics['error']}; metrics.json in {run_dir}",
            file=sys.stderr,
        )
    if metrics["status"] == "failed":  # stacked runs that failed alone; the others finished
        runs = metrics.get("runs", [metrics])
        failed = sum(one["status"] == "failed" for one in runs)
        print(
            f"adaptrun: error: {failed} of {len(runs)} stacked runs failed: "
            f"{metrics['error']}; metrics.json in each run's folder under {run_dir}",
            file=sys.stderr,
        )
        sys.exit(1)
    if metrics["status"] == "interrupted":
        print(
            f"adaptrun: stopped by {STOP.name} at step {metrics.get('steps')}; to resume, "
            f"run the same command with hydra.run.dir={run_dir}",
            file=sys.stderr,
        )
        sys.exit(128 + (STOP.signum or 0))
    return metrics


def hydra_files(cfg: DictConfig) -> dict[str, str]:
    """What Hydra writes into a run's ``.hydra/`` (config.yaml, hydra.yaml, overrides.yaml);
    adaptrun writes them itself once the run may use its folder (hydra.output_subdir)."""
    hydra_cfg: Any = HydraConfig.instance().cfg  # set: this runs inside a Hydra job
    return {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
        "overrides.yaml": OmegaConf.to_yaml(hydra_cfg.hydra.overrides.task),
    }


def _sweep_job(
    cfg: DictConfig,
    run_dir: Path,
    overrides: dict[str, str],
    files: dict[str, str],
    sweep_dir: Path,
    num: int,
    jobs: int,
) -> dict[str, Any]:
    """One job of a multirun: whatever happens is recorded and the sweep goes on (after a
    full disk, the remaining jobs of this process are recorded as not started). A job of
    the stacked sweeper records each of its runs under the run's own number."""
    from adaptrun.config.plan import PLAN_KEY

    stop_with_the_sweep()  # a worker process: stop when the sweep's process is gone
    try:
        if cfg.get(PLAN_KEY) is not None:
            return _stacked_sweep_job(cfg, run_dir, overrides, files, sweep_dir, jobs)
        given = " ".join(f"{k}={v}" for k, v in overrides.items())
        entries = [(num, run_dir, given)]
        return _run_recorded(cfg, run_dir, overrides, files, sweep_dir, jobs, entries)
    finally:
        exit_if_orphaned()


def _stacked_sweep_job(
    cfg: DictConfig,
    job_dir: Path,
    overrides: dict[str, str],
    files: dict[str, str],
    sweep_dir: Path,
    jobs: int,
) -> dict[str, Any]:
    """The stacked sweeper's job: its runs as one stacked model, each recorded under its
    own number and folder; runs that cannot be stacked (the model, activation or optimizer
    says so) train one after another instead, each as an unstacked job would."""
    from adaptrun.config.check import check_config
    from adaptrun.config.plan import PLAN_KEY, run_configs, swept_runs

    planned = swept_runs(cfg)
    common = {k: v for k, v in overrides.items() if k.lstrip("+") != PLAN_KEY}
    try:
        check_config(cfg)
    except UserError as exc:  # every run passed the sweep's check alone: they run alone
        log.info("these runs cannot be stacked (%s); they run one after another", exc)
        outcomes = {}
        for (num, folder, own), one in zip(planned, run_configs(cfg), strict=True):
            mine = {**common, **dict(o.split("=", 1) for o in own)}
            lines = [f"{k}={v}" for k, v in mine.items()]
            files = {
                **hydra_files(one),
                "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(lines)),
            }
            outcomes[num] = _sweep_job(
                one, job_dir.parent / folder, mine, files, sweep_dir, num, jobs
            )
        return {"status": "completed", "runs": outcomes}
    entries = [
        (num, job_dir.parent / folder, " ".join([*(f"{k}={v}" for k, v in common.items()), *own]))
        for num, folder, own in planned
    ]
    return _run_recorded(cfg, job_dir, overrides, files, sweep_dir, jobs, entries)


def _run_recorded(
    cfg: DictConfig,
    job_dir: Path,
    overrides: dict[str, str],
    files: dict[str, str],
    sweep_dir: Path,
    jobs: int,
    entries: list[tuple[int, Path, str]],
) -> dict[str, Any]:
    """Run the job and record each of its ``entries`` (number, run folder, overrides
    line): one for a plain job, one per run for a stacked sweeper's."""
    from adaptrun.runner.run import run

    if DISK_FULL:
        error = "not started: an earlier run of this sweep found the disk full"
        for num, folder, given in entries:
            _record(sweep_dir, num, folder, "failed", error, given)
        return {"status": "failed", "error": error}
    try:
        job_num = entries[0][0] if len(entries) == 1 else None  # a stacked job's runs: theirs
        metrics = run(cfg, job_dir, overrides, files, jobs, in_sweep=True, job_num=job_num)
    except Exception as exc:  # already in each run's metrics.json, the traceback in its log
        error = describe_error(exc)
        what = "run" if len(entries) == 1 else "stacked runs"
        print(f"adaptrun: {what} failed ({job_dir}): {error}", file=sys.stderr)
        if disk_full(exc):
            DISK_FULL.append(str(job_dir))
        for num, folder, given in entries:
            _record(sweep_dir, num, folder, "failed", error, given)
        return {"status": "failed", "error": error}
    per_run = metrics["runs"] if len(entries) > 1 else [metrics]
    for (num, folder, given), one in zip(entries, per_run, strict=True):
        outcome = "skipped" if metrics.get("skipped") else one["status"]
        if outcome in ("diverged", "failed"):  # a failed one here: alone, in its stack
            print(f"adaptrun: run {outcome} ({folder}): {one['error']}", file=sys.stderr)
        _record(sweep_dir, num, folder, outcome, one.get("error"), given)
    return metrics


def _record(
    sweep_dir: Path, num: int, run_dir: Path, outcome: str, error: str | None, given: str
) -> None:
    """The job's outcome for the summary; a job that cannot record it says so and the
    summary counts it as missing."""
    from adaptrun.sweep.jobs import record_outcome

    try:
        record_outcome(sweep_dir, num, run_dir, outcome, error, given)
    except OSError as exc:
        print(f"adaptrun: the outcome of {run_dir} could not be recorded: {exc}", file=sys.stderr)


def main() -> None:
    """Console-script entry point."""
    logging.raiseExceptions = False  # a log file on a full disk must not print tracebacks
    if {"--help", "-h"} & set(sys.argv[1:]):
        named = [a for a in sys.argv[1:] if a not in ("--help", "-h")]
        if not named:
            print(help_text(config_dir()), end="")
            return
        text = group_help(config_dir(), named[0])
        if text is None:
            print(
                f"adaptrun: error: no option group {named[0]!r}; groups: "
                + ", ".join(groups(config_dir())),
                file=sys.stderr,
            )
            sys.exit(2)
        print(text, end="")
        return
    if not PRINT_ONLY & set(sys.argv[1:]):
        load_plugins()  # the typed schemas every option's yaml extends
    # Hydra prints its own compose and override errors over many lines and exits 1; with
    # HYDRA_FULL_ERROR it raises them instead, and they are shortened here (a user who
    # set it gets Hydra's full traceback, as Hydra documents)
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    warnings.filterwarnings("error", message="provider=hydra.searchpath.*is not available")
    try:
        _main()
    except KeyboardInterrupt:  # Ctrl-C before training started (while training, STOP has it)
        print("adaptrun: interrupted before training started; nothing to resume", file=sys.stderr)
        sys.exit(128 + 2)
    except (HydraException, OmegaConfBaseException, UserWarning) as exc:
        if full_error:
            raise
        print(f"adaptrun: error: {hydra_error(exc)}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # outside a run (a run records and reports its own)
        if full_error or VERBOSE:  # hydra.verbose=true: the run's traceback, as asked
            raise
        print(
            f"adaptrun: error: {type(exc).__name__}: {one_line(exc)} "
            "(HYDRA_FULL_ERROR=1 shows the traceback)",
            file=sys.stderr,
        )
        sys.exit(1)
    finally:
        if not full_error:
            os.environ.pop("HYDRA_FULL_ERROR", None)


if __name__ == "__main__":
    main()
