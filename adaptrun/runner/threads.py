"""How many CPU threads a run's PyTorch ops use.

PyTorch takes every core by default; several runs on one machine (the joblib launcher, a
shared node, a laptop busy with other work) then each spawn that many threads and slow
one another down many times over, and a small network is slower on several threads than
on one even alone (each op is too small to split). ``auto`` therefore takes the cores
that are really free for this run (its CPU affinity, which SLURM and cgroups set, shared
among the launcher's concurrent jobs, less what other processes keep busy right now) and
then measures: a few steps of the run's own model on one thread and on all of those
cores, and keeps the many only where they are at least 10% faster. The choice and why go
into metrics.json (``threads``, ``threads_why``).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _cpus() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


PROC_STAT = Path("/proc/stat")


def _times(cpus: set[int], stat: Path) -> dict[int, tuple[int, int]]:
    """Per CPU of ``cpus``: (idle, total) jiffies from /proc/stat."""
    out = {}
    for line in stat.read_text().splitlines():
        name, _, rest = line.partition(" ")
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            values = [int(v) for v in rest.split()[:8]]
            out[int(name[3:])] = (values[3] + values[4], sum(values))  # idle + iowait
    return out


def busy_cores(window: float = 0.1, stat: Path = PROC_STAT) -> float | None:
    """How many of this process's cores other work keeps busy now: their busy share over
    ``window`` seconds, while this process sleeps (None where /proc/stat is unreadable).
    The load average would answer a minute late; this is the moment the run starts."""
    cpus = _cpus()
    try:
        before = _times(cpus, stat)
        time.sleep(window)
        after = _times(cpus, stat)
    except (OSError, ValueError, IndexError):
        return None
    busy = 0.0
    for cpu, (idle, total) in after.items():
        if cpu in before and total > before[cpu][1]:
            busy += 1 - (idle - before[cpu][0]) / (total - before[cpu][1])
    return busy


@dataclasses.dataclass(frozen=True)
class ThreadChoice:
    count: int
    why: str


def resolve_threads(setting: int | str, concurrent_jobs: int = 1) -> int:
    """The cores ``trainer.threads`` allows: an integer as given; ``auto``: this process's
    cores shared among the launcher's concurrent jobs (before anything is measured)."""
    if setting != "auto":
        return int(setting)
    jobs = available_cores() if concurrent_jobs < 1 else concurrent_jobs  # joblib's -1: all
    return max(1, available_cores() // jobs)


def choose_threads(
    setting: int | str,
    concurrent_jobs: int = 1,
    probe: Callable[[], Any] | None = None,
    busy: Callable[[], float | None] = busy_cores,
) -> ThreadChoice:
    """``trainer.threads``: as given, or ``auto``: the free share of the cores, then the
    faster of one thread and that many for ``probe`` (one step of the run's model; None:
    nothing to measure, as on a GPU, where the threads only feed the device)."""
    if setting != "auto":
        return ThreadChoice(int(setting), "trainer.threads as given")
    cores, share = available_cores(), resolve_threads(setting, concurrent_jobs)
    why = f"auto: {cores} cores, {share} for this run ({concurrent_jobs} concurrent jobs)"
    taken = busy() if share > 1 else None
    if taken is not None:
        share = max(1, min(share, round(cores - taken)))
        why += f", {taken:.1f} busy with other work, {share} free"
    if share == 1 or probe is None:
        return ThreadChoice(share, why)
    one, many = _race(probe, share)
    count = share if many < 0.9 * one else 1  # a near tie: one thread, kinder to others
    return ThreadChoice(count, f"{why}; a step took {one * 1e3:.3g} ms on 1 thread, "
                               f"{many * 1e3:.3g} ms on {share}")  # fmt: skip


def _race(
    probe: Callable[[], Any], threads: int, rounds: int = 3, span: float = 0.01
) -> tuple[float, float]:
    """Median seconds per call of ``probe`` on 1 thread and on ``threads``, taking turns
    (so that a passing moment of load falls on both), each turn at least ``span``
    seconds of calls (a small network's step is a millisecond: one call is noise), after
    one warm-up call each."""
    import torch  # here: the CLI imports this module for --help, which loads no torch

    before = torch.get_num_threads()
    times: dict[int, list[float]] = {1: [], threads: []}
    try:
        for n in (1, threads):
            torch.set_num_threads(n)
            probe()
        for _ in range(rounds):
            for n in (1, threads):
                torch.set_num_threads(n)
                calls, start = 0, time.perf_counter()
                while (elapsed := time.perf_counter() - start) < span or calls < 2:
                    probe()
                    calls += 1
                times[n].append(elapsed / calls)
    finally:
        torch.set_num_threads(before)
    return sorted(times[1])[rounds // 2], sorted(times[threads])[rounds // 2]


def concurrent_jobs(launcher: Mapping[str, Any]) -> int:
    """How many jobs a Hydra launcher runs at once on this machine: joblib's ``n_jobs``;
    one for the basic launcher and for submitit, whose jobs each get their own cores."""
    n_jobs = launcher.get("n_jobs")
    return n_jobs if isinstance(n_jobs, int) else 1
