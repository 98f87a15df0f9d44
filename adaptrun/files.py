"""Writing a file so that a reader, or a run killed mid-write, sees the old or the new
content, never half of it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def replace_atomically(
    path: Path, write: Callable[[BinaryIO], object], tmp_name: str | None = None
) -> None:
    """Call ``write`` on a temporary file beside ``path``, flush it to disk, rename it over
    ``path``. ``tmp_name`` for files whose readers pick up anything with a similar name."""
    tmp = path.with_name(tmp_name or f"{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
