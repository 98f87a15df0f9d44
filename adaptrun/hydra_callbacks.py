"""Hydra callbacks that fail fast, before Hydra creates a run folder."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from adaptrun.config_check import check_config
from adaptrun.errors import ConfigError


def fail(message: str) -> None:
    print(f"adaptrun: error: {message}", file=sys.stderr)
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


class FailFast(Callback):
    """Refuse an unwritable output folder or an impossible config with one line, exit 2."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        self._check_folder(Path(str(config.hydra.run.dir)), "hydra.run.dir")
        job = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
        try:
            check_config(job)
        except (ConfigError, OmegaConfBaseException) as exc:  # the latter: a bad interpolation
            fail(str(exc).strip().replace("\n", "; "))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        HydraConfig.instance().set_config(config)
        self._check_folder(Path(str(config.hydra.sweep.dir)), "hydra.sweep.dir")

    @staticmethod
    def _check_folder(folder: Path, key: str) -> None:
        problem = check_writable(folder.absolute())
        if problem:
            fail(
                f"output folder {folder} cannot be written: {problem}; "
                f"choose another with {key}=PATH"
            )
