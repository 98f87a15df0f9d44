"""How many CPU threads a run's PyTorch ops use.

PyTorch takes every core by default; several runs on one machine (the joblib launcher, a
shared node) then each spawn that many threads and slow one another down many times
over. ``auto`` divides this process's cores (its CPU affinity, which SLURM and cgroups
set) among the runs the launcher starts at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_threads(setting: int | str, concurrent_jobs: int = 1) -> int:
    """``trainer.threads``: an integer as given, or ``auto``."""
    if setting != "auto":
        return int(setting)
    jobs = available_cores() if concurrent_jobs < 1 else concurrent_jobs  # joblib's -1: all
    return max(1, available_cores() // jobs)


def concurrent_jobs(launcher: Mapping[str, Any]) -> int:
    """How many jobs a Hydra launcher runs at once on this machine: joblib's ``n_jobs``;
    one for the basic launcher and for submitit, whose jobs each get their own cores."""
    n_jobs = launcher.get("n_jobs")
    return n_jobs if isinstance(n_jobs, int) else 1
