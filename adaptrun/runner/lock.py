"""One process at a time in a run (or sweep) folder.

Two processes writing one folder (a requeued job while the old one still runs, two sweeps
pointed at one folder) would share checkpoint.pt.tmp and write TensorBoard points twice.
The lock is an advisory ``flock`` on ``.adaptrun.lock``, which the kernel releases when
its holder dies; the file also names the holder, so a second process can say who has it
and a lock left by a dead process is taken over with a line saying so. Hand-written:
filelock, the usual dependency, would not tell who holds the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from adaptrun.core.errors import UserError
from adaptrun.core.files import open_nofollow, refuse_link

log = logging.getLogger(__name__)
LOCK = ".adaptrun.lock"


class FolderBusy(UserError):
    """Another live process holds the folder."""


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "run") -> Iterator[None]:
    """Hold ``folder``'s lock for the block; FolderBusy if another process holds it."""
    path = Path(folder) / LOCK
    refuse_link(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise FolderBusy(
                f"another adaptrun process ({holder}) is writing the {what} in {folder}; "
                "wait for it to end, or choose another folder (hydra.run.dir / hydra.sweep.dir)"
            ) from None
        earlier = _holder(fd)
        if earlier:
            log.warning(
                "%s: taking over the lock left by %s, which is no longer running", folder, earlier
            )
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%F %T")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # an empty file: released cleanly, nobody to take over
    finally:
        os.close(fd)  # releases the flock


def _holder(fd: int) -> str:
    """Who the lock file names, as text ("" if nobody)."""
    raw = os.pread(fd, 4096, 0)
    try:
        who = json.loads(raw) if raw else None
    except ValueError:
        return ""
    if not isinstance(who, dict):
        return ""
    return f"pid {who.get('pid')} on {who.get('host')}, since {who.get('since')}"
