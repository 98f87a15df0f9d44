"""Hydra callbacks: fail fast before Hydra creates a run folder; a sweep's summary."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from adaptrun.config.check import check_config
from adaptrun.core.errors import UserError, config_problem
from adaptrun.core.files import (
    check_control_files,
    check_name_lengths,
    free_space,
    hold_space,
    write_text_atomic,
)
from adaptrun.core.interrupt import STOP, mark_sweep_process
from adaptrun.core.messages import one_line
from adaptrun.runner.lock import folder_lock
from adaptrun.sweep import dashboard
from adaptrun.sweep import jobs as sweep

# The sweep folder's lock while the sweep runs; kept off the callback, which launchers
# (submitit) pickle.
SWEEP_LOCK = contextlib.ExitStack()


def fail(message: str) -> None:
    print(f"adaptrun: error: {one_line(message)}", file=sys.stderr)
    sys.exit(2)


def check_writable(folder: Path) -> str | None:
    """Why ``folder`` cannot be created and written, or None. Leaves nothing behind."""
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:
        tempfile.TemporaryDirectory(dir=existing).cleanup()
    except OSError as exc:
        return f"cannot write in {existing} ({exc.strerror or exc})"
    return None


def _sweeper_capabilities(target: str) -> tuple[bool, bool, Any]:
    """(grid, stacks, checked_jobs) of the configured sweeper's class: a grid sweeper
    (Hydra's basic one and its subclasses) lists every job before the first starts, so
    the sweep can be checked up front; one that declares ``stacks_runs`` groups them into
    stacked jobs; one with ``checked_jobs`` chooses some jobs as it goes (the tuned
    sweeper's evaluation runs) and lists what to check up front itself. Optuna, Ax and
    the like choose their jobs as they go."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.utils import get_class

    try:
        cls = get_class(target)
    except Exception:  # a sweeper Hydra itself will report it cannot load
        return False, False, None
    grid = isinstance(cls, type) and issubclass(cls, BasicSweeper)
    stacks = grid and bool(getattr(cls, "stacks_runs", False))
    return grid, stacks, getattr(cls, "checked_jobs", None) if grid else None


def _composer(config_name: str, search: list[str]) -> Any:
    """A job's overrides -> its config, as the sweep's check composes it."""
    from hydra import compose

    return lambda overrides: compose(config_name=config_name, overrides=[*search, *overrides])


class FailFast(Callback):
    """Refuse an unwritable output folder or an impossible config with one line, exit 2;
    at the end of a sweep, summarise what became of each run."""

    def __init__(self) -> None:
        self.jobs: list[list[str]] | None = []  # each job's overrides (on_multirun_start)
        self.metrics: list[str] = []  # the HParams metric columns, in the order planned

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        self._check_folder(Path(str(config.hydra.run.dir)), "hydra.run.dir")
        job = OmegaConf.masked_copy(config, [str(k) for k in config if k != "hydra"])
        try:
            check_config(job)
        except Exception as exc:  # a bad interpolation, or a check that met what it cannot read
            fail(config_problem(exc))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Check the sweep folder and every job's config before any job starts."""
        HydraConfig.instance().set_config(config)
        sweep_dir = Path(str(config.hydra.sweep.dir))
        self._check_folder(sweep_dir, "hydra.sweep.dir")
        # the basic sweeper's jobs, or the stacked sweeper's runs (the same combinations)
        target = str(config.hydra.sweeper.get("_target_", ""))
        grid, stacked, checked_jobs = _sweeper_capabilities(target)
        if stacked:
            stack = config.hydra.sweeper.get("max_stack")
            if not isinstance(stack, int) or isinstance(stack, bool) or stack < 1:
                fail(f"hydra.sweeper.max_stack: must be an integer >= 1 (got {stack!r})")
        if not grid:
            self.jobs = None  # Optuna, Ax...: the sweeper picks jobs as it goes
            self._take(sweep_dir)
            return
        params = config.hydra.sweeper.get("params") or {}
        search = [o for o in config.hydra.overrides.hydra if o.startswith("hydra.searchpath")]
        name = str(kwargs.get("config_name") or "config")
        task = list(config.hydra.overrides.task)
        try:
            if checked_jobs is None:
                jobs = self.jobs = sweep.expand(task, params)
            else:  # the sweeper numbers its later jobs as it goes: the summary reads theirs
                self.jobs = None
                jobs = checked_jobs(task, config.hydra.sweeper, _composer(name, search))
        except (HydraException, UserError) as exc:
            fail(str(exc).strip().replace("\n", "; "))
        problems, configs = sweep.preflight(name, jobs, search, stacked)
        if problems:
            print(f"adaptrun: error: {sweep.refusal(problems, len(jobs))}", file=sys.stderr)
            sys.exit(2)
        self._take(sweep_dir)
        self.metrics = dashboard.write_planned(sweep_dir, jobs, configs)

    def _take(self, sweep_dir: Path) -> None:
        """Lock the sweep folder (one sweep at a time), forget the outcomes of an earlier
        invocation, and hold room for the outcomes and summary.md if the disk fills up."""
        try:
            check_control_files(sweep_dir)
            SWEEP_LOCK.enter_context(folder_lock(sweep_dir, "sweep"))
            sweep.clear_outcomes(sweep_dir)
            hold_space(sweep_dir)
        except (UserError, OSError) as exc:
            SWEEP_LOCK.close()
            fail(str(exc))
        # a stop signal between jobs is the sweep's: no further job starts, the summary is
        # written and the sweep exits 128 + signal (during a run, the run checkpoints)
        SWEEP_LOCK.enter_context(STOP.installed())
        mark_sweep_process()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print and save the summary; exit non-zero when any run did not finish."""
        sweep_dir = Path(str(config.hydra.sweep.dir))
        jobs = sweep.collect(sweep_dir, self.jobs, STOP.name if STOP else None)
        summary = sweep.render(sweep_dir, jobs)
        try:
            dashboard.write_recorded(sweep_dir, self.metrics)
        except OSError as exc:  # the planned columns stand
            print(f"adaptrun: the HParams columns could not be rewritten: {exc}", file=sys.stderr)
        try:
            write_text_atomic(sweep_dir / sweep.SUMMARY, summary)
        except OSError as exc:  # the console still gets it
            print(f"adaptrun: {sweep.SUMMARY} could not be written: {exc}", file=sys.stderr)
            print(summary, file=sys.stderr)
        finally:
            free_space(sweep_dir)
            SWEEP_LOCK.close()
        print(sweep.console_summary(sweep_dir, jobs), file=sys.stderr)
        if STOP:
            print(
                f"adaptrun: sweep stopped by {STOP.name}; run the same command again to resume",
                file=sys.stderr,
            )
            sys.exit(128 + (STOP.signum or 0))
        if any(job.outcome in sweep.BAD for job in jobs):
            sys.exit(1)

    @staticmethod
    def _check_folder(folder: Path, key: str) -> None:
        try:
            check_name_lengths(folder)
            check_control_files(folder)
        except UserError as exc:
            fail(str(exc))
        problem = check_writable(folder.absolute())
        if problem:
            fail(
                f"output folder {folder} cannot be written: {problem}; "
                f"choose another with {key}=PATH"
            )
