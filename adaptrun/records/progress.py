"""A progress bar over training steps that stays silent when stderr is not a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


class Progress:
    """Steps done out of the total, with the epoch, running loss and last test metric."""

    def __init__(self, total_steps: int, steps_per_epoch: int, enabled: bool = True) -> None:
        self.steps_per_epoch = steps_per_epoch
        disable = None if enabled else True  # None: tqdm shows a bar only on a terminal
        self.bar = tqdm(total=total_steps, unit="step", disable=disable, dynamic_ncols=True)
        self.values: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return not self.bar.disable

    def update(self, step: int, **values: float) -> None:
        if not self.enabled:
            return
        self.values["epoch"] = f"{step / self.steps_per_epoch:.2f}"
        self.values.update({k: f"{v:.4g}" for k, v in values.items()})
        self.bar.set_postfix(self.values, refresh=False)
        self.bar.update(step - self.bar.n)

    @contextlib.contextmanager
    def logging(self) -> Iterator[None]:
        """Route console log lines around the bar instead of through it."""
        if self.enabled:
            with logging_redirect_tqdm():
                yield
        else:
            yield

    def close(self) -> None:
        self.bar.close()
