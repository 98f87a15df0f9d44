"""Stop signals: a cluster asks a run to stop, the run checkpoints at the next step boundary.

SIGTERM, SIGUSR1 and SIGINT (Ctrl-C) only set a flag here; the training loop looks at it after each
step, saves a checkpoint and returns ``interrupted``. Inside a submitit job the
preemption / timeout signal (``SUBMITIT_PREEMPT_SIGNAL``, USR2 by default) is caught the
same way and, once the checkpoint is written, handed to submitit's own handler, which
requeues the job; the requeued job resumes from that checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)  # SIGINT: Ctrl-C


class StopRequest:
    """The first stop signal a process received, if any; shared by every run in it."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}
        self._preempt: int | None = None  # submitit's signal, in a submitit job

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def __bool__(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # only a flag: logging or I/O inside a signal handler can interleave with the
        # record being written when the signal came; the run logs the stop itself
        if self.signum is None:
            self.signum = signum

    def hand_over(self) -> None:
        """Give submitit's signal to submitit's own handler, which requeues the job. Only
        that one: Python's own SIGINT handler would raise KeyboardInterrupt."""
        if self.signum is None or self.signum != self._preempt:
            return
        previous = self._previous.get(self.signum)
        if callable(previous):
            previous(self.signum, None)

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Catch the stop signals while a run trains (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        signals: list[int] = list(STOP_SIGNALS)
        preempt = _submitit_signal()
        if preempt is not None and callable(signal.getsignal(preempt)):
            signals.append(preempt)
            self._preempt = preempt
        self._previous = {s: signal.signal(s, self._handle) for s in signals}
        try:
            yield self
        finally:
            for s, handler in self._previous.items():
                signal.signal(s, handler)


SWEEP_PID = "ADAPTRUN_SWEEP_PID"  # the sweep's own process, for its worker processes


def mark_sweep_process() -> None:
    """Called by the sweep's process before its launcher starts workers (which inherit
    the environment), so each worker can tell when that process is gone."""
    os.environ[SWEEP_PID] = f"{socket.gethostname()}:{os.getpid()}"


def stop_with_the_sweep() -> None:
    """In a worker process the sweep's process started on this machine (joblib's), stop as
    that process does: when it is gone (killed, even by SIGKILL, which it cannot pass on),
    this process sends itself SIGTERM, so a run in training checkpoints and ends instead of
    training on as an orphan. Only the sweep's own children watch: a SLURM job inherits the
    variable too, on another machine, where that process id means nothing. Hand-written:
    loky notices a dead parent only between tasks."""
    host, _, pid = os.environ.get(SWEEP_PID, "").rpartition(":")
    sweep = int(pid) if pid.isdigit() else None
    parent = os.getppid()
    if sweep is None or host != socket.gethostname() or parent != sweep or _WATCHING:
        return
    _WATCHING.append(sweep)

    def watch() -> None:
        while os.getppid() == parent and _alive(sweep):
            time.sleep(0.5)
        _ORPHANED.append(True)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="adaptrun-sweep-watch", daemon=True).start()


_WATCHING: list[int] = []
_ORPHANED: list[bool] = []


def exit_if_orphaned() -> None:
    """After a job: a worker whose sweep is gone ends here (its run has checkpointed),
    instead of blocking forever on the pipe to a parent nobody reads."""
    if _ORPHANED:
        os._exit(128 + signal.SIGTERM)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _submitit_signal() -> int | None:
    """submitit's preemption signal, when this process is a submitit job."""
    if not any(k.startswith(("SUBMITIT_", "SLURM_JOB_ID")) for k in os.environ):
        return None
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, f"SIG{name}", None)


STOP = StopRequest()
