"""File checks done before a loader trusts a file: MD5 and IDX headers."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

from adaptrun.errors import DatasetError

IDX_TYPES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}  # type code -> bytes


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_md5(dataset: str, path: Path, expected: str) -> None:
    actual = md5sum(path)
    if actual != expected:
        raise DatasetError(
            f"dataset {dataset}: {path} is corrupt (MD5 {actual}, expected {expected}); "
            "delete it and download it again"
        )


def check_idx(dataset: str, path: Path) -> None:
    """An IDX file (MNIST family) must have a valid header and exactly the bytes it declares."""
    data = path.read_bytes()
    problem = None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        problem = "not an IDX file (bad magic number)"
    else:
        dims = data[3]
        header = 4 + 4 * dims
        shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
        expected = header + math.prod(shape) * IDX_TYPES[data[2]]
        if len(data) != expected:
            problem = f"{len(data)} bytes but its header {shape} needs {expected}"
    if problem:
        raise DatasetError(
            f"dataset {dataset}: {path} is corrupt ({problem}); delete it and download it again"
        )
