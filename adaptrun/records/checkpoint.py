"""Checkpoints for exact resume: written atomically, read back with ``weights_only=True``.

A checkpoint holds everything the next step depends on (model, optimizer, schedule,
every RNG, the tracker's history and its half-summed log window) and where the loop
stood, so a resumed run takes the same steps as one that was never stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptrun.core.errors import UserError
from adaptrun.core.files import refuse_link, replace_atomically
from adaptrun.core.schemas import plain

log = logging.getLogger(__name__)

FORMAT = 1
FILENAME = "checkpoint.pt"
# Keys that may differ between the run that wrote a checkpoint and the one resuming it.
NOT_COMPARED = (
    "dataset.root",
    "data_root",
    "trainer.device",
    "trainer.checkpoint_every",
    "trainer.checkpoint_every_epochs",
    "activation.impl",  # the fused kernels and the PyTorch modules compute the same function
    "trainer.threads",  # how many CPU threads share the work, not what is computed
)


@dataclasses.dataclass(frozen=True)
class Position:
    """Where training stands; a resumed run continues right after it."""

    step: int = 0
    epoch: int = 0  # the epoch in progress
    batch: int = 0  # batches of that epoch already trained on


def flat_config(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"trainer.epochs": 20, ...}`` with the keys that may change on resume left out."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_config(value, f"{name}."))
        elif name not in NOT_COMPARED:
            flat[name] = (
                value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
            )
    return flat


def fingerprint(flat: Mapping[str, Any]) -> str:
    """A short hash of a flat config, stored in metrics.json to tell runs apart."""
    return hashlib.sha1(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]


def config_hash(cfg: Any) -> str:
    """The hash a run's metrics.json carries: its resolved config, less what may change on
    resume (a stacked run's own config hashes as a separate run of it would)."""
    return fingerprint(flat_config(plain(cfg)))


def rng_state() -> dict[str, Any]:
    """Every global generator: Python, NumPy, torch CPU and each CUDA device."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(path: Path, state: Mapping[str, Any]) -> None:
    """torch.save so that a reader (or a resumed run) sees the old or the new file. The
    bytes are made in memory first: torch.save writing to a full disk raises an opaque
    RuntimeError, a plain write the OSError (ENOSPC) that says what happened."""
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    replace_atomically(path, lambda f: f.write(buffer.getbuffer()))


def _read(path: Path, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint's contents; ValueError (or torch's own error) if it is not one.
    ``mmap``: tensors mapped, not read (a look at the config reads a few KB of a large
    model's checkpoint)."""
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"not an adaptrun checkpoint of format {FORMAT}")
    missing = {"position", "model", "optimizer", "schedule", "rng", "tracker", "config"}
    missing -= set(state)
    if missing:
        raise ValueError(f"missing {', '.join(sorted(missing))}")
    if not isinstance(state["config"], dict) or not isinstance(state["position"], dict):
        raise ValueError("its config or position is not a mapping")
    return state


def set_aside(path: Path, exc: BaseException) -> None:
    """Move a checkpoint that cannot be used to ``<name>.corrupt``, with one warning line;
    the run starts from scratch."""
    aside = path.with_name(path.name + ".corrupt")
    refuse_link(aside)
    os.replace(path, aside)
    text = " ".join(str(exc).split())
    log.warning(
        "checkpoint %s is corrupt (%s: %s); moved to %s, starting from scratch",
        path,
        type(exc).__name__,
        text[:200] + ("..." if len(text) > 200 else ""),
        aside.name,
    )


def check_written_for(path: Path, config: Mapping[str, Any]) -> None:
    """Refuse a checkpoint written by another config, touching nothing (before the run
    takes its folder's lock); one that cannot be read is left for ``load`` to set aside."""
    refuse_link(path)
    if not path.exists():
        return
    try:
        state = _read(path, mmap=True)
    except Exception:
        return
    _compare(path, state["config"], config)


def _compare(path: Path, written: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    differs = sorted(k for k in set(config) | set(written) if config.get(k) != written.get(k))
    if differs:
        shown = ", ".join(f"{k} ({written.get(k)!r} -> {config.get(k)!r})" for k in differs[:5])
        raise UserError(
            f"{path} was written by a run with another config ({shown}"
            f"{', ...' if len(differs) > 5 else ''}); resume with the same settings, "
            f"or delete the checkpoint / choose another folder to start over"
        )


def load(path: Path, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it can be trusted, else None (and why, in the log).

    A file that does not load, or lacks what a checkpoint holds, is moved aside as
    ``<name>.corrupt`` and the run starts from scratch. One written for another
    config is refused: resuming it would silently mix two experiments.
    """
    refuse_link(path)
    if not path.exists():
        return None
    try:
        state = _read(path)
    except Exception as exc:
        set_aside(path, exc)
        return None
    _compare(path, state["config"], config)
    return state


class Unusable(ValueError):
    """A checkpoint that loaded but does not fit the run it would resume."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a checkpoint's position must fit: the run's step budget and epochs."""

    total_steps: int
    steps_per_epoch: int
    epochs: int

    def check(self, position: Position) -> None:
        """Where the loop stands is one it can reach: within the budget, and the step
        count the epoch and batch give (a crafted step past the end would say
        ``completed`` after no training)."""
        if not (
            0 <= position.epoch <= self.epochs
            and 0 <= position.batch <= self.steps_per_epoch
            and 0 <= position.step <= self.total_steps
        ):
            raise Unusable(f"position {position} is outside the run's {self.total_steps} steps")
        expected = min(position.epoch * self.steps_per_epoch + position.batch, self.total_steps)
        if position.step != expected:
            raise Unusable(f"position {position}: epoch and batch give step {expected}")


class Checkpoints:
    """Saves the run's state at epoch ends and every ``every`` steps (if set)."""

    def __init__(
        self,
        run_dir: Path,
        config: Mapping[str, Any],
        objects: Mapping[str, Any],
        every: int | None = None,
        every_epochs: int = 1,
        before_save: Callable[[], None] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(run_dir) / FILENAME
        self.meta = dict(meta or {})  # how the run ran (its thread count), for its resume
        self.before_save = before_save  # e.g. put the run's events on disk first
        self.config = dict(config)
        self.objects = dict(objects)  # name -> object with state_dict()/load_state_dict()
        self.every = every
        self.every_epochs = every_epochs
        self.saved_at: float | None = None

    def due(self, step: int) -> bool:
        return self.every is not None and self.every > 0 and step % self.every == 0

    def due_at_epoch_end(self, epoch: int) -> bool:
        return bool(self.every_epochs) and (epoch + 1) % self.every_epochs == 0

    def save(self, position: Position) -> None:
        if self.before_save is not None:
            self.before_save()
        self.saved_at = time.time()
        state: dict[str, Any] = {
            "format": FORMAT,
            "config": self.config,
            "saved_at": self.saved_at,
            "position": dataclasses.asdict(position),
            "rng": rng_state(),
            "meta": self.meta,
        }
        state.update({name: obj.state_dict() for name, obj in self.objects.items()})
        save_atomic(self.path, state)

    def apply(self, state: Mapping[str, Any], plan: Plan) -> Position:
        """Put a loaded checkpoint's state into the run's objects; where to go on from.

        All or nothing: a state that does not apply in full (a tensor of another shape, a
        bad RNG entry, a position the run cannot reach, an optimizer whose settings are
        not the config's) leaves every object as it was, the file is set aside and the
        run starts from scratch (Position())."""
        fresh = {name: copy.deepcopy(obj.state_dict()) for name, obj in self.objects.items()}
        rng = rng_state()
        try:
            position = Position(**state["position"])
            plan.check(position)
            settings = _optimizer_settings(self.objects.get("optimizer"))
            for name, obj in self.objects.items():
                obj.load_state_dict(state[name])
            set_rng_state(state["rng"])
            _check_resumed(self.objects, position, settings)
        except Exception as exc:
            for name, obj in self.objects.items():
                obj.load_state_dict(fresh[name])
            set_rng_state(rng)
            set_aside(self.path, exc)
            return Position()
        return position

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _optimizer_settings(optimizer: Any) -> list[dict[str, Any]]:
    """Each parameter group's settings as the config made them (not its parameters)."""
    if optimizer is None:
        return []
    return [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]


def _check_resumed(objects: Mapping[str, Any], position: Position, settings: list[Any]) -> None:
    """The applied state is the one this config would have reached: the same optimizer
    settings (learning rate included, as the schedule gives it at this step), the
    optimizer's moments shaped like their parameters, the tracker at the same step."""
    optimizer, schedule = objects.get("optimizer"), objects.get("schedule")
    if optimizer is not None:
        if len(optimizer.param_groups) != len(settings):
            raise Unusable("its optimizer has another number of parameter groups")
        for group, made in zip(optimizer.param_groups, settings, strict=True):
            for key, value in made.items():
                if key != "lr" and group.get(key) != value:
                    raise Unusable(
                        f"optimizer {key} {group.get(key)!r} is not the config's {value!r}"
                    )
            for param in group["params"]:
                for name, moment in optimizer.state.get(param, {}).items():
                    shaped = torch.is_tensor(moment) and moment.dim() > 0
                    if shaped and moment.shape != param.shape:
                        raise Unusable(f"optimizer {name} of shape {tuple(moment.shape)}")
    if schedule is not None and optimizer is not None:
        if getattr(schedule, "last_epoch", position.step) != position.step:
            raise Unusable(f"its schedule stands at step {schedule.last_epoch}")
        factors = [fn(position.step) for fn in getattr(schedule, "lr_lambdas", [])]
        for group, factor in zip(optimizer.param_groups, factors, strict=False):
            expected = group["initial_lr"] * factor
            if not math.isclose(group["lr"], expected, rel_tol=1e-6, abs_tol=1e-12):
                raise Unusable(f"learning rate {group['lr']!r}, the schedule gives {expected!r}")
    tracker = objects.get("tracker")
    if tracker is not None and getattr(tracker, "step", position.step) != position.step:
        raise Unusable(f"its records stand at step {tracker.step}, its position at {position.step}")
