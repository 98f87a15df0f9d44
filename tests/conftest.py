"""Shared helpers: compose configs exactly as the CLI does, and run the CLI itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from adaptrun.cli import config_dir

REPO = Path(__file__).resolve().parent.parent


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The job config the CLI would hand to ``run`` for these overrides."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m adaptrun ARGS`` in a subprocess, output captured (so not a terminal)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "adaptrun", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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
