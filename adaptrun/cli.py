"""The ``adaptrun`` command: Hydra composes the config, ``run`` does the work."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from adaptrun.errors import UserError
from adaptrun.interrupt import STOP
from adaptrun.resolvers import register_resolvers
from adaptrun.run import describe_error, run
from adaptrun.sweep import record_outcome


def config_dir() -> Path:
    """The config tree: inside an installed wheel, else the repository's top-level conf/."""
    packaged = Path(__file__).resolve().parent / "conf"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "conf"


register_resolvers()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _main(cfg: DictConfig) -> dict[str, Any]:
    hydra_cfg = HydraConfig.get()
    overrides = dict(o.split("=", 1) for o in hydra_cfg.overrides.task if "=" in o)
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return _sweep_job(cfg, run_dir, overrides, Path(hydra_cfg.sweep.dir), hydra_cfg.job.num)
    try:
        metrics = run(cfg, run_dir, overrides)
    except UserError as exc:
        if hydra_cfg.verbose:  # hydra.verbose=true: the full traceback too
            raise
        print(f"adaptrun: error: {exc}", file=sys.stderr)
        sys.exit(2)
    if metrics["status"] == "diverged":
        print(
            f"adaptrun: run diverged: {metrics['error']}; metrics.json in {run_dir}",
            file=sys.stderr,
        )
    if metrics["status"] == "interrupted":
        print(
            f"adaptrun: stopped by {STOP.name} at step {metrics.get('steps')}; to resume, "
            f"run the same command with hydra.run.dir={run_dir}",
            file=sys.stderr,
        )
        sys.exit(128 + (STOP.signum or 0))
    return metrics


def _sweep_job(
    cfg: DictConfig, run_dir: Path, overrides: dict[str, str], sweep_dir: Path, num: int
) -> dict[str, Any]:
    """One job of a multirun: whatever happens is recorded and the sweep goes on."""
    given = " ".join(f"{k}={v}" for k, v in overrides.items())
    try:
        metrics = run(cfg, run_dir, overrides)
    except Exception as exc:  # already in its metrics.json, the traceback in its log
        error = describe_error(exc)
        print(f"adaptrun: run failed ({run_dir}): {error}", file=sys.stderr)
        record_outcome(sweep_dir, num, run_dir, "failed", error, given)
        return {"status": "failed", "error": error}
    outcome = "skipped" if metrics.get("skipped") else metrics["status"]
    if outcome == "diverged":
        print(f"adaptrun: run diverged ({run_dir}): {metrics['error']}", file=sys.stderr)
    record_outcome(sweep_dir, num, run_dir, outcome, metrics.get("error"), given)
    return metrics


def main() -> None:
    """Console-script entry point."""
    try:
        _main()
    except KeyboardInterrupt:  # Ctrl-C before training started (while training, STOP has it)
        print("adaptrun: interrupted before training started; nothing to resume", file=sys.stderr)
        sys.exit(128 + 2)


if __name__ == "__main__":
    main()
