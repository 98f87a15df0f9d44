"""Writing a file so that a reader, or a run killed mid-write, sees the old or the new
content, never half of it; keeping room for the records when the disk fills up; and never
following a symbolic link while doing either.

The link rule: a run or sweep folder may sit on a file system other users write to, so a
control file adaptrun creates, replaces or deletes (``.adaptrun.lock``,
``.adaptrun.reserve``, ``*.tmp``, ``.adaptrun/``, ``.hydra/``) that turns out to be a
symbolic link is refused with one line naming it, before anything is written. The opens
themselves use ``O_NOFOLLOW`` as well, so a link placed between the check and the open
fails instead of being followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from adaptrun.core.errors import UserError

RESERVE = ".adaptrun.reserve"
RESERVE_BYTES = 256 * 1024  # metrics.json, a sweep's outcomes and summary: a few KB each
NAME_MAX = 255  # where the file system does not say (os.pathconf)
# the control files and folders of a run or sweep folder (a lock, a reserve, temporary
# files, adaptrun's and Hydra's folders): none of them may be a link
CONTROL = (
    ".adaptrun.lock",
    RESERVE,
    ".adaptrun",
    ".adaptrun/outcomes",
    ".hydra",
    "metrics.json.tmp",
    "summary.md.tmp",
    "checkpoint.pt.tmp",
    ".events-trim.tmp",
)


class LinkRefused(UserError):
    """A control file or folder is a symbolic link."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is a symbolic link; adaptrun never follows links in a run or sweep "
            "folder: remove the link (or choose another folder) and run again"
        )


def refuse_link(path: Path) -> None:
    """LinkRefused if ``path`` is a symbolic link (dangling or not)."""
    if Path(path).is_symlink():
        raise LinkRefused(Path(path))


def check_control_files(folder: Path, extra: tuple[str, ...] = ()) -> None:
    """Refuse a folder any of whose control files (or ``extra`` names) is a link."""
    refuse_link(Path(folder))
    for name in (*CONTROL, *extra):
        refuse_link(Path(folder) / name)


def check_name_lengths(path: Path) -> None:
    """Every component of ``path`` fits the file system's limit (in bytes), checked
    before anything is created, so a long override value fails with one line instead of
    half-way through making a run folder."""
    path = Path(path).absolute()
    existing = path
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = NAME_MAX
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise UserError(
                f"the folder name {part[:40]}... is {size} bytes, longer than this file "
                f"system allows ({limit}); choose a shorter hydra.run.dir / hydra.sweep.dir"
            )


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long to even look up
        return False


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (LinkRefused)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LinkRefused(Path(path)) from None
        raise


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
    refuse_link(path.parent)
    refuse_link(tmp)  # a link is someone else's file: never written, never removed
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # a rename replaces a link at ``path``, never its target
    except BaseException:
        if not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
        raise


def hold_space(folder: Path) -> bool:
    """Hold a little disk space in ``folder`` so that the records of a run (or sweep) that
    fails on a full disk can still be written (``use_reserve``); ``free_space`` gives it
    back. False on a file system without fallocate (the run goes on without a reserve);
    an OSError (ENOSPC) when the disk is already too full to hold it, so the caller can
    record the failure while a few bytes are still free. Hand-written: no dependency keeps
    an emergency reserve."""
    path = Path(folder) / RESERVE
    refuse_link(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
        finally:
            os.close(fd)
    except OSError as exc:
        _unlink_regular(path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(
                errno.ENOSPC,
                f"{os.strerror(errno.ENOSPC)} (not even {RESERVE_BYTES // 1024} KB for the "
                f"records in {folder}); free some space and run again",
            ) from None
        return False
    return True


def free_space(folder: Path) -> None:
    _unlink_regular(Path(folder) / RESERVE)


@contextlib.contextmanager
def reserved_space(folder: Path) -> Iterator[bool]:
    """``hold_space`` while the block runs; yields whether the space is held."""
    held = hold_space(folder)
    try:
        yield held
    finally:
        free_space(folder)


def _unlink_regular(path: Path) -> bool:
    """Delete ``path`` if it is a regular file (never a link, never a folder)."""
    with contextlib.suppress(FileNotFoundError):
        if Path(path).is_file() and not Path(path).is_symlink():
            Path(path).unlink()
            return True
    return False


def _release_reserve(folder: Path) -> bool:
    """Delete the nearest reserve in ``folder`` or up to three folders above it."""
    return any(
        _unlink_regular(candidate / RESERVE) for candidate in [folder, *list(folder.parents)[:3]]
    )
