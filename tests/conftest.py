"""Shared helpers: compose configs exactly as the CLI does, and run the CLI itself."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

if not torch.cuda.is_available():
    # The fused-kernel tests run Triton's interpreter on CPU tensors. Triton reads this
    # once, on first use, and a module collected early (torchvision's) may get there
    # first: so it is set here, before any test module is imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from adaptrun.config.options import config_dir
from adaptrun.core.registry import load_plugins

load_plugins()  # as the CLI does before it composes a run's config

if os.environ.get("PYTEST_XDIST_WORKER"):
    # workers share the cores: each worker (and the CLI processes it starts, which inherit
    # it) keeps to one core of its own, so runs' trainer.threads=auto takes one thread and
    # no two workers' runs contend for a core
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        worker = int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw"))
        os.sched_setaffinity(0, {cores[worker % len(cores)]})

REPO = Path(__file__).resolve().parent.parent


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The job config the CLI would hand to ``run`` for these overrides."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``adaptrun ARGS`` in its own process, output captured (so not a terminal): a child
    forked from this worker's CLI server (cli_forked.py), which imported adaptrun once; the
    same entry point, exit code and output as ``python -m adaptrun ARGS``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return _SERVER.run(list(args), Path(cwd), env, timeout)


class _CliServer:
    """``cli_forked.py --serve``, started on first use and kept for the worker's session:
    one line per command in, the child's pid and then its exit code out."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.pending = b""
        self.count = 0
        self.work = Path(os.environ.get("TMPDIR", "/tmp")) / f"adaptrun-cli-{os.getpid()}"

    def start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.work.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            env.pop("HYDRA_FULL_ERROR", None)
            script = Path(__file__).with_name("cli_forked.py")
            self.proc = subprocess.Popen(
                [sys.executable, str(script), "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            self.pending = b""
        return self.proc

    def line(self, timeout: float | None) -> str | None:
        """The server's next line, or None if none came within ``timeout`` seconds."""
        proc = self.start()
        assert proc.stdout is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([proc.stdout], [], [], left)[0]:
                return None
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"the CLI server ended (exit {proc.wait()})"
            self.pending += chunk
        text, _, self.pending = self.pending.partition(b"\n")
        return text.decode()

    def run(
        self, args: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess:
        proc = self.start()
        assert proc.stdin is not None
        self.count += 1
        out = self.work / str(self.count)
        case = {"args": args, "cwd": str(cwd), "out": str(out), "env": env}
        proc.stdin.write((json.dumps(case) + "\n").encode())
        proc.stdin.flush()
        pid = int(self.line(timeout=60) or 0)
        assert pid, "the CLI server did not start the command"
        code = self.line(timeout)
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self.line(timeout=60)
            raise subprocess.TimeoutExpired(["adaptrun", *args], timeout)
        stdout, stderr = (Path(f"{out}.{name}").read_text() for name in ("stdout", "stderr"))
        return subprocess.CompletedProcess(["adaptrun", *args], int(code), stdout, stderr)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


_SERVER = _CliServer()
atexit.register(_SERVER.close)


def run_cli_many(
    commands: Sequence[tuple[Sequence[str], Path]], timeout: float = 300
) -> list[subprocess.CompletedProcess]:
    """Each ``(args, cwd)`` as ``run_cli`` runs it (a child of this worker's CLI server),
    the whole list within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    return [
        run_cli(args, Path(cwd), timeout=max(1.0, deadline - time.monotonic()))
        for args, cwd in commands
    ]


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (e.g. ``300k``) mounted at ``folder`` for the block; skips the
    test where mounting is not allowed."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)])
    if done.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (CI and developers run as root here)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def start_cli(args: Sequence[str], cwd: Path) -> subprocess.Popen:
    """``python -m adaptrun ARGS`` started in the background, for tests that signal it."""
    return subprocess.Popen(
        [sys.executable, "-m", "adaptrun", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(folder: Path, pattern: str, proc: subprocess.Popen, timeout: float = 90) -> Path:
    """The first path matching ``pattern`` under ``folder`` once it exists; fails if the
    process ends first or nothing appears in time."""
    deadline = time.monotonic() + timeout
    while not (found := sorted(folder.glob(pattern))):
        assert proc.poll() is None, f"ended before {pattern} appeared: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {folder / pattern} after {timeout}s"
        time.sleep(0.02)
    return found[0]


def run_dirs(root: Path) -> list[Path]:
    """Every run folder (one holding metrics.json) under root, sorted."""
    return sorted(p.parent for p in root.rglob("metrics.json"))


def events(run_dir: Path) -> EventAccumulator:
    """A run's TensorBoard events, every point kept."""
    sizes = {"scalars": 0, "histograms": 0, "images": 0}
    acc = EventAccumulator(str(run_dir), size_guidance=sizes)
    acc.Reload()
    return acc


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture
def compose_cfg():
    return compose_config


def activation_config(variant: str = "fixed", **fields: Any) -> Any:
    """The family config that computes ``variant`` (fixed, global, layerwise, neuronwise,
    adact, apl), the way the conf/activation options choose them."""
    from adaptrun.activations import AdActConfig, APLConfig, FixedConfig, SlopeConfig

    if variant in ("global", "layerwise", "neuronwise"):
        return SlopeConfig(variant=variant, **fields)
    return {"fixed": FixedConfig, "adact": AdActConfig, "apl": APLConfig}[variant](**fields)


# helpers several test modules share (one place, not imported across test files)

TIMING = {"wall_seconds", "seconds_per_step", "timed_in", "threads_why"}  # how it was timed


def comparable(metrics: dict) -> dict:
    """metrics.json without wall-clock figures (seconds to each target included)."""
    out = {k: v for k, v in metrics.items() if k not in TIMING}
    out["convergence"] = {
        name: {t: None if p is None else {**p, "seconds": None} for t, p in targets.items()}
        for name, targets in metrics["convergence"].items()
    }
    return out


def stop_at(monkeypatch, at: int) -> None:
    """Deliver SIGUSR1 to this process while the run (or a stack of runs) logs step ``at``."""
    from adaptrun.records.track import Tracker
    from adaptrun.training.stacked import StackedTracker

    for records in (Tracker, StackedTracker):

        def train_step(self, step, *rest, _original=records.train_step, **kw):
            if step == at:
                signal.raise_signal(signal.SIGUSR1)
            return _original(self, step, *rest, **kw)

        monkeypatch.setattr(records, "train_step", train_step)


EXACT = ("status", "steps", "epochs", "params", "config_hash", "hparams", "error")


def assert_same_run(stacked: dict, separate: dict) -> None:
    """Equal up to float rounding: a batched matmul sums in another order."""
    for key in EXACT:
        assert stacked[key] == separate[key], key
    numbers = [k for k in separate if k.startswith(("final_", "best_")) or k.startswith("auc")]
    assert numbers
    for key in numbers:
        tolerance = 2 / 360 if key.endswith("acc") else 1e-3  # one test image either way
        assert stacked[key] == pytest.approx(separate[key], rel=1e-3, abs=tolerance), key


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BASES = ["relu", "leaky_relu", "tanh", "sigmoid", "sin", "gelu", "silu", "prelu"]


def twins(spec: dict, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """The same activation module twice, impl=torch and impl=triton, equal parameters."""
    from adaptrun.activations import ActivationFactory

    torch.manual_seed(0)
    ref = ActivationFactory(activation_config(**spec, impl="torch"))(shape)
    fused = ActivationFactory(activation_config(**spec, impl="triton"))(shape)
    with torch.no_grad():
        for p in ref.parameters():  # away from the initial values: slopes != 1, bent hinges
            p.add_(torch.randn_like(p) * 0.3)
        fused.load_state_dict(ref.state_dict())
    return ref.to(DEVICE), fused.to(DEVICE)


def compare(ref: nn.Module, fused: nn.Module, x: torch.Tensor, atol: float = 1e-5) -> None:
    """Outputs, input gradient and every parameter gradient agree."""
    x_ref = x.detach().clone().requires_grad_()
    x_fused = x.detach().clone().requires_grad_()
    y_ref, y_fused = ref(x_ref), fused(x_fused)
    assert y_fused.shape == y_ref.shape
    torch.testing.assert_close(y_fused, y_ref, atol=atol, rtol=1e-4)
    grad = torch.randn_like(y_ref)
    y_ref.backward(grad)
    y_fused.backward(grad)
    torch.testing.assert_close(x_fused.grad, x_ref.grad, atol=atol, rtol=1e-4)
    params = dict(fused.named_parameters())
    assert params, "an adaptive activation has parameters"
    for name, p in ref.named_parameters():
        torch.testing.assert_close(params[name].grad, p.grad, atol=1e-4, rtol=1e-3)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first (in file order), then the fast ones: the workers start on the
    long tests and finish on short ones, instead of one worker running a 40 s test alone
    at the end while the other waits (longest-first scheduling)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
