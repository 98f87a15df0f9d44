"""One run: config -> task, model, optimizer, tracker -> the training loop -> metrics."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from adaptrun.activations import selfcheck
from adaptrun.activations.plots import activation_curves, has_curves
from adaptrun.config import plan as stacking
from adaptrun.config.check import Checked, check_config
from adaptrun.core.errors import UserError, describe_error
from adaptrun.core.files import (
    check_control_files,
    check_name_lengths,
    free_space,
    hold_space,
    write_text_atomic,
)
from adaptrun.core.interrupt import STOP
from adaptrun.core.schemas import plain
from adaptrun.records import checkpoint
from adaptrun.records.board import Board
from adaptrun.records.checkpoint import config_hash, flat_config
from adaptrun.records.events import truncate_events
from adaptrun.records.history import ENDED, History
from adaptrun.records.hparams import run_hparams
from adaptrun.records.progress import Progress
from adaptrun.records.track import Tracker, write_failure
from adaptrun.runner.allocator import keep_freed_memory
from adaptrun.runner.assemble import (
    MATCHED,
    build_run,
    resolve_device,
    run_step,
    training_flops,
)
from adaptrun.runner.lock import folder_lock
from adaptrun.runner.threads import ThreadChoice, choose_threads
from adaptrun.tasks import TASKS, Task
from adaptrun.tasks.protocol import Trainable
from adaptrun.training import fastpaths
from adaptrun.training.loop import Loop, train
from adaptrun.training.optim import build_optimizer, build_schedule
from adaptrun.training.run_rates import own_rates
from adaptrun.training.stacked import StackedTracker, isolating, stack_size, together

log = logging.getLogger(__name__)


def _log_failure(exc: BaseException) -> None:
    """The full traceback goes to the run's log file; the CLI prints the one-line reason."""
    log.error("run failed: %s", describe_error(exc), exc_info=exc, extra={"file_only": True})


def finished_run(run_dir: Path, config_hash: str) -> dict[str, Any] | None:
    """metrics.json of a run that already ended for good (completed or diverged) here."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        return None
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        metrics, why = None, f"{type(exc).__name__}: {exc}"
    else:
        why = f"it holds {type(metrics).__name__}, not an object"
    if not isinstance(metrics, dict):  # damaged: train again, it is rewritten at the end
        log.warning("%s is damaged (%s); the run trains again", path, " ".join(why.split()))
        return None
    if metrics.get("status") not in ENDED:
        return None
    if metrics.get("config_hash") != config_hash:
        raise UserError(
            f"{run_dir} holds a finished run of another config; "
            "choose another folder (hydra.run.dir / hydra.sweep.dir) to run this one"
        )
    return metrics


def _figures(task: Task, model: torch.nn.Module) -> Callable[[], dict[str, Any]]:
    """The task's own figures plus the learned activations that can draw themselves."""
    curves = has_curves(model)
    return lambda: {**task.figures(model), **(activation_curves(model) if curves else {})}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a job: its config, folder and what its metrics.json is tagged with."""

    cfg: DictConfig
    run_dir: Path
    hparams: dict[str, Any]
    config_hash: str
    overrides: list[str] | None = None  # a stacked sweeper's run: its command-line overrides
    num: int | None = None  # ... and its number in the sweep
    trial: str = ""  # its name in the HParams dashboard (short_name of its overrides)


def _trial(num: int | None, lines: Sequence[str]) -> str:
    """The sweep's job number (as summary.md numbers its runs) and the short name."""
    name = short_name([line for line in lines if not line.startswith("hydra")])
    return f"{num}: {name}" if num is not None else name


def short_name(overrides: Sequence[str]) -> str:
    """A run's overrides as the HParams dashboard's trial name, short enough to read in
    its column: a group's choice by its value, a key by its last part, space-separated
    (``activation=global activation.n=10 seed=1`` -> ``global n=10 seed=1``)."""
    words = []
    for line in overrides:
        key, _, value = line.lstrip("+~").partition("=")
        word = value if "." not in key and key != "seed" else f"{key.rsplit('.', 1)[-1]}={value}"
        words.append((key == "experiment", word))  # the preset, the same for most runs: last
    return " ".join(word for _, word in sorted(words, key=lambda w: w[0]))


def run_specs(
    cfg: DictConfig, run_dir: Path, overrides: Mapping[str, Any], job_num: int | None = None
) -> list[RunSpec]:
    """The job's runs (its plan: itself, trainer.stack's seeds or a stacked sweeper's
    combinations), each with the config, folder, hash and hparams a separate run of it has."""
    common = {k: v for k, v in overrides.items() if stacking.key_of(k) not in stacking.PLANNING}
    specs = []
    for run, one in zip(stacking.runs_of(cfg), stacking.run_configs(cfg), strict=True):
        swept = run.num is not None  # beside the job, with the overrides its twin job has
        lines = [*(f"{k}={v}" for k, v in common.items()), *run.own]
        specs.append(
            RunSpec(
                one,
                (run_dir.parent if swept else run_dir) / run.folder,
                run_hparams(one, lines),
                config_hash(one),
                lines if swept else None,
                run.num,
                _trial(run.num if swept else job_num, lines),
            )
        )
    return specs


def run(
    cfg: DictConfig,
    run_dir: Path,
    overrides: Mapping[str, Any] | None = None,
    hydra_files: Mapping[str, str] | None = None,
    concurrent_jobs: int = 1,
    in_sweep: bool = False,
    job_num: int | None = None,
) -> dict[str, Any]:
    """Train one configuration into ``run_dir``; returns what metrics.json holds (with
    trainer.stack > 1: the overall status and each run's metrics under ``runs``).

    Refusals leave the folder as it was: a ConfigError from the config check, a folder
    holding a finished run or a checkpoint of another config, a folder another process
    is writing (its lock). A folder whose run already completed (or diverged) is left as
    it is; one with a checkpoint resumes from it. Only then are the configs written
    (``hydra_files``: name -> text for ``.hydra/``, as Hydra would write them).
    ``concurrent_jobs``: runs the launcher starts at once here (trainer.threads=auto).
    ``in_sweep``: the sweep writes the HParams dashboard's columns, not each run;
    ``job_num``: the job's number in it, which starts its runs' HParams trial names. Any later
    exception (a missing dataset, a crash, a full disk) is recorded in metrics.json with
    status ``failed`` and raised again.
    """
    checked = check_config(cfg)
    run_dir = Path(run_dir)
    config = flat_config(plain(cfg))
    specs = run_specs(cfg, run_dir, overrides or {}, job_num)
    for folder in {run_dir, *(spec.run_dir for spec in specs)}:
        check_name_lengths(folder)
        check_control_files(folder)
    skipped = _skipped(specs)
    if skipped is not None:
        return skipped
    if STOP:  # a stop signal reached this process during an earlier run of the sweep
        error = f"not started: {STOP.name} received"
        return _combined([{"status": "interrupted", "error": error, "steps": 0} for _ in specs])
    checkpoint.check_written_for(run_dir / checkpoint.FILENAME, config)  # before the lock
    with folder_lock(run_dir), STOP.installed(), _reserve(run_dir, specs):
        skipped = _skipped(specs)  # another process may have finished it while we waited
        if skipped is not None:
            return skipped
        resumed = checkpoint.load(run_dir / checkpoint.FILENAME, config)
        try:
            _write_configs(run_dir, specs, hydra_files or {})
        except Exception as exc:
            _record_failure(exc, specs)
            raise
        keep_freed_memory()
        return _train(cfg, run_dir, config, specs, checked, resumed, in_sweep, concurrent_jobs)


def _skipped(specs: list[RunSpec]) -> dict[str, Any] | None:
    """The metrics of a job all of whose runs already ended here for good, else None."""
    found = [finished_run(spec.run_dir, spec.config_hash) for spec in specs]
    finished = [m for m in found if m is not None]
    if len(finished) < len(found):
        return None
    for spec, metrics in zip(specs, finished, strict=True):
        log.info("%s already %s: skipped", spec.run_dir, metrics["status"])
    return {**_combined(finished), "skipped": True}


@contextlib.contextmanager
def _reserve(run_dir: Path, specs: list[RunSpec]) -> Iterator[None]:
    """``reserved_space`` for the job; a disk too full to hold it fails every run there
    and then, while its small metrics.json still fits (no TensorBoard writer exists yet)."""
    try:
        hold_space(run_dir)
    except OSError as exc:
        with contextlib.suppress(OSError):
            _record_failure(exc, specs)
        raise
    try:
        yield
    finally:
        free_space(run_dir)


def _write_configs(run_dir: Path, specs: list[RunSpec], hydra_files: Mapping[str, str]) -> None:
    """``.hydra/`` of the job (Hydra's own files) and of each stacked run (its config, as a
    separate run of that seed has it: what the report reads)."""
    for name, text in hydra_files.items():
        (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / ".hydra" / name, text)
    for spec in specs:
        if spec.run_dir != run_dir:
            (spec.run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
            write_text_atomic(spec.run_dir / ".hydra" / "config.yaml", OmegaConf.to_yaml(spec.cfg))
        if spec.overrides is not None:
            text = OmegaConf.to_yaml(OmegaConf.create(spec.overrides))
            write_text_atomic(spec.run_dir / ".hydra" / "overrides.yaml", text)
        if spec.num is not None and "hydra.yaml" in hydra_files:  # as its twin's job has it
            hydra = OmegaConf.create(hydra_files["hydra.yaml"])
            hydra.hydra.job.num = spec.num
            hydra.hydra.job.override_dirname = spec.run_dir.name
            hydra.hydra.overrides.task = spec.overrides
            hydra.hydra.runtime.output_dir = str(spec.run_dir.absolute())
            write_text_atomic(spec.run_dir / ".hydra" / "hydra.yaml", OmegaConf.to_yaml(hydra))


def _record_failure(exc: BaseException, specs: list[RunSpec]) -> None:
    _log_failure(exc)
    for spec in specs:
        write_failure(spec.run_dir, describe_error(exc), spec.hparams, _meta(spec))


def _combined(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's metrics, or a stack's: completed only if every run completed."""
    if len(runs) == 1:
        return runs[0]
    statuses = {m["status"] for m in runs}
    status = next((s for s in ("interrupted", "failed", "diverged") if s in statuses), "completed")
    errors = [m["error"] for m in runs if m.get("error")]
    steps = runs[0].get("steps")
    return {"status": status, "error": errors[0] if errors else None, "steps": steps, "runs": runs}


def _train(
    cfg: DictConfig,
    run_dir: Path,
    config: Mapping[str, Any],
    specs: list[RunSpec],
    checked: Checked,
    resumed: Mapping[str, Any] | None,
    in_sweep: bool = False,
    concurrent_jobs: int = 1,
) -> dict[str, Any]:
    caps = checked.task.capabilities
    try:
        device = resolve_device(cfg.trainer.device)
        tasks: list[Task] = []
        models: list[torch.nn.Module] = []
        for spec in specs:
            mine = checked if spec.cfg is cfg else check_config(spec.cfg)
            task, model = build_run(spec.cfg, mine, device, tasks[0] if tasks else None)
            spec.hparams.update(getattr(model, MATCHED, {}))  # the width bench.match chose
            tasks.append(task)
            models.append(model)
        fast = fastpaths.resolve(cfg.trainer, device, caps.images)
        models = [fastpaths.apply(fast, m, t, device) for m, t in zip(models, tasks, strict=True)]
        loop = dataclasses.replace(Loop.from_config(cfg.trainer), precision=fast.precision)
        total = loop.total_steps(tasks[0].steps_per_epoch)
        trackers = [
            _tracker(
                cfg,
                spec,
                models[r],
                tasks[r],
                total + loop.lbfgs_steps,
                resumed,
                show=r == 0,
                job_dir=run_dir,
                in_sweep=in_sweep,
                named=len(specs) > 1,
            )
            for r, spec in enumerate(specs)
        ]
        flops = training_flops(models[0], tasks[0])  # one run's step: the stack's are alike
        model, trained, tracker = together(models, tasks, trackers)
        threads = _threads(cfg, concurrent_jobs, model, trained, device, resumed)
        torch.set_num_threads(threads.count)
        # the first run's optimizer settings: a stacked sweep's runs may each set their own
        # rate (the job's config holds only what they share)
        optimizer = build_optimizer(model, specs[0].cfg.optimizer)
        _own_rates(specs, optimizer, tracker)
        schedule = build_schedule(optimizer, cfg.optimizer, trained.steps_per_epoch, total)
    except Exception as exc:
        _record_failure(exc, specs)
        raise
    state = {"model": model, "optimizer": optimizer, "schedule": schedule, "tracker": tracker}
    saver = checkpoint.Checkpoints(
        run_dir,
        config,
        state,
        cfg.trainer.checkpoint_every,
        cfg.trainer.checkpoint_every_epochs,
        before_save=tracker.flush,
        meta={"threads": dataclasses.asdict(threads)},  # a resumed run keeps the count
    )
    compiled = False
    selfcheck.begin_run()
    try:
        with trackers[0].progress.logging():  # log lines go around the bar, not through it
            plan = checkpoint.Plan(total, trained.steps_per_epoch, loop.epochs)
            start = saver.apply(resumed, plan) if resumed else checkpoint.Position()
            if start.step:
                log.info("resuming from %s at step %d", saver.path, start.step)
            what = f"{len(specs)} stacked runs" if len(specs) > 1 else cfg.model.name
            log.info("training %s on %s for %d steps (%s)", what, cfg.dataset.name, total, device)
            runs, one_run = stack_size(models), models[0]
            step_fn, compiled = run_step(
                cfg, checked, model, tasks[0], loop.precision, runs, one_run
            )
            log.info(
                "step: %s (trainer.compile=%s)",
                "compiled" if compiled else "eager",
                cfg.trainer.compile,
            )
            step_fn = isolating(step_fn, optimizer, tracker)
            status = train(
                model, trained, step_fn, optimizer, schedule, tracker, loop, saver, start
            )
    except Exception as exc:
        _log_failure(exc)
        _record_impl(trackers)
        for spec, one, task in zip(specs, trackers, tasks, strict=True):
            # a stacked run that had already ended alone keeps its own status and reason
            status = "failed" if one.alive or one.failed else "diverged"
            error = describe_error(exc) if one.alive else None
            extra = _meta(spec, task, compiled, optimizer, run_dir, threads, flops, len(specs))
            one.finish(status, error=error, extra=extra)
        raise
    _record_impl(trackers)
    metrics = _combined(
        [
            one.finish(
                one.outcome(status),
                extra=_meta(spec, task, compiled, optimizer, run_dir, threads, flops, len(specs)),
            )
            for spec, one, task in zip(specs, trackers, tasks, strict=True)
        ]
    )
    if status == "interrupted":
        log.warning(
            "stopped by %s at step %d; run again in %s to resume", STOP.name, tracker.step, run_dir
        )
        STOP.hand_over()  # inside a submitit job: requeue it (this does not return)
        return metrics
    saver.remove()
    log.info("%s after %d steps; metrics.json in %s", metrics["status"], tracker.step, run_dir)
    return metrics


def _threads(
    cfg: DictConfig,
    concurrent_jobs: int,
    model: torch.nn.Module,
    task: Trainable,
    device: torch.device,
    resumed: Mapping[str, Any] | None,
) -> ThreadChoice:
    """trainer.threads for this run: a resumed run keeps the count its checkpoint ran
    with (another count may round a sum differently: resume stays exact); otherwise
    choose_threads, its probe a training step (forward, backward, the optimizer's update)
    of a copy of the model and its own optimizer on the first batch (CPU only; the global
    generators untouched, so the run's randomness is as it would be without)."""
    kept = (resumed or {}).get("meta", {}).get("threads")
    if kept:
        return ThreadChoice(int(kept["count"]), f"{kept['why']} (kept on resume)")
    probe = None
    if device.type == "cpu":
        twin = copy.deepcopy(model)
        optimizer = build_optimizer(twin, cfg.optimizer)
        batch = next(iter(task.train_batches(0)))

        def probe() -> None:
            with torch.random.fork_rng(devices=[]):
                optimizer.zero_grad(set_to_none=True)
                task.loss(twin, batch).backward()
                optimizer.step()

    return choose_threads(cfg.trainer.threads, concurrent_jobs, probe)


def _record_impl(trackers: list[Tracker]) -> None:
    """``activation.impl_used`` in the hparams: torch, triton, or fallback (some kernel
    configuration failed its self-check and the reference served it)."""
    used = selfcheck.outcome(selfcheck.impl_used())
    for one in trackers:
        one.hparams["activation.impl_used"] = used


def _meta(
    spec: RunSpec,
    task: Task | None = None,
    compiled: bool | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    job_dir: Path | None = None,
    threads: ThreadChoice | None = None,
    flops: int | None = None,
    stacked: int | None = None,
) -> dict[str, Any]:
    """What metrics.json records beside the numbers: what really ran. ``timed_in``: the
    job whose steps its seconds measured; only runs timed in one job (a stack's, which
    share every step) may have their seconds compared (adaptrun-report). ``stacked_runs``:
    how many runs shared its step (1: alone), since a stack's batched products round
    differently and a long run can carry that far (docs/bench.md measured up to 62%)."""
    settings = task.settings() if task is not None else {}
    if job_dir is not None:
        settings["timed_in"] = str(Path(job_dir).absolute())
    if threads is not None:  # trainer.threads as resolved, and why (auto measures)
        settings["threads_why"] = threads.why
    if compiled is not None:
        settings["compiled"] = compiled  # trainer.compile as resolved (auto: the task's call)
        settings["impl_used"] = selfcheck.impl_used()  # fused kernel configurations
    if flops is not None:  # one training step's, as torch.utils.flop_counter counts them
        settings["flops_per_step"] = flops
    if stacked is not None:
        settings["stacked_runs"] = stacked
    if optimizer is not None:  # torch's fused update kernel, or its loop over tensors
        settings["optimizer_fused"] = all(g.get("fused") for g in optimizer.param_groups)
    return {"config_hash": spec.config_hash, "threads": torch.get_num_threads(), **settings}


def _own_rates(specs: Sequence[RunSpec], optimizer: torch.optim.Optimizer, records: Any) -> None:
    """A stack whose runs differ in optimizer.lr or optimizer.weight_decay (the config
    check let only an optimizer with ``per_run_rates`` through): each run's update takes
    its own (run_rates.py), and its records log its own rate."""
    if len(specs) < 2:
        return
    rates = [float(spec.cfg.optimizer.get("lr", 0.0)) for spec in specs]
    decays = [float(spec.cfg.optimizer.get("weight_decay", 0.0)) for spec in specs]
    factors = own_rates(optimizer, rates, decays)
    if factors is not None and isinstance(records, StackedTracker):
        records.lr_factors = factors


def _tracker(
    cfg: DictConfig,
    spec: RunSpec,
    model: torch.nn.Module,
    task: Task,
    total_steps: int,
    resumed: Mapping[str, Any] | None,
    show: bool,
    job_dir: Path,
    in_sweep: bool,
    named: bool = False,
) -> Tracker:
    """A run's tracker; on resume its folder's events are first trimmed to the checkpoint.
    ``show``: the progress bar (one for a stack of runs); ``named``: its log lines start
    with its folder's name (a stack's runs, of trainer.stack or the stacked sweeper). Its
    HParams trial is its overrides' short name (or, with none, its folder's). The Custom
    Scalars layout puts the task's primary metric beside the loss."""
    truncate_events(spec.run_dir, resumed["saved_at"] if resumed else None)
    targets = plain(cfg.targets)
    purge_step = resumed["position"]["step"] + 1 if resumed else None
    primary = TASKS[cfg.task.name].primary
    board = Board(spec.run_dir, purge_step)
    board.layout(primary, task.goals)
    return Tracker(
        spec.run_dir,
        model,
        History(task.goals, task.steps_per_epoch, targets),
        board,
        Progress(total_steps, task.steps_per_epoch, enabled=show),
        cfg.trainer.log_every,
        spec.hparams,
        figures=_figures(task, model) if cfg.trainer.figures else None,
        figure_steps=list(cfg.trainer.figures_at),
        name=spec.run_dir.name if named else "",
        trial=spec.trial or str(spec.run_dir.relative_to(job_dir.parent)),
        experiment=not in_sweep,
        primary=primary,
    )
