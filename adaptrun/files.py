"""Writing a file so that a reader, or a run killed mid-write, sees the old or the new
content, never half of it; and keeping room for the records when the disk fills up."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

RESERVE = ".adaptrun.reserve"
RESERVE_BYTES = 256 * 1024  # metrics.json, a sweep's outcomes and summary: a few KB each


def replace_atomically(
    path: Path,
    write: Callable[[BinaryIO], object],
    tmp_name: str | None = None,
    use_reserve: bool = False,
) -> None:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, rename it over
    ``path``; a failed write leaves no temporary file. ``tmp_name`` for files whose readers
    pick up anything with a similar name. ``use_reserve``: on a full disk, free the space a
    ``reserved_space`` block holds in this folder or above, and write again."""
    tmp = path.with_name(tmp_name or f"{path.name}.tmp")
    try:
        _write_and_rename(path, tmp, write)
    except OSError as exc:
        if not (use_reserve and exc.errno == errno.ENOSPC and _release_reserve(path.parent)):
            raise
        _write_and_rename(path, tmp, write)


def write_text_atomic(path: Path, text: str) -> None:
    """A record (metrics.json, a sweep's summary): atomic, and written even on a full disk
    while a reserve is held."""
    replace_atomically(path, lambda f: f.write(text.encode()), use_reserve=True)


def _write_and_rename(path: Path, tmp: Path, write: Callable[[BinaryIO], object]) -> None:
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def hold_space(folder: Path) -> None:
    """Hold a little disk space in ``folder`` so that the records of a run (or sweep) that
    fails on a full disk can still be written (``use_reserve``); ``free_space`` gives it
    back. Hand-written: no dependency keeps an emergency reserve."""
    path = Path(folder) / RESERVE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, RESERVE_BYTES)
    except OSError:  # already too full, or a filesystem without fallocate: go on without
        path.unlink(missing_ok=True)


def free_space(folder: Path) -> None:
    (Path(folder) / RESERVE).unlink(missing_ok=True)


@contextlib.contextmanager
def reserved_space(folder: Path) -> Iterator[None]:
    """``hold_space`` while the block runs."""
    hold_space(folder)
    try:
        yield
    finally:
        free_space(folder)


def _release_reserve(folder: Path) -> bool:
    """Delete the nearest reserve in ``folder`` or up to three folders above it."""
    for candidate in [folder, *list(folder.parents)[:3]]:
        reserve = candidate / RESERVE
        if reserve.exists():
            reserve.unlink(missing_ok=True)
            return True
    return False
