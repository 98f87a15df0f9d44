"""File checks done before a loader trusts a file: torchvision's published MD5 sums, and
the headers of MNIST-family IDX files (torchvision publishes MD5 sums only for the
compressed copies, which differ between mirrors and Debian's package)."""

from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

from adaptrun.core.errors import DatasetError
from adaptrun.core.files import replace_atomically

IDX_TYPES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}  # type code -> bytes
IDX_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32"}


def check_md5(dataset: str, path: Path, expected: str) -> None:
    from torchvision.datasets.utils import calculate_md5, check_integrity

    if not check_integrity(path, expected):
        raise DatasetError(
            f"dataset {dataset}: {path} is corrupt (MD5 {calculate_md5(path)}, expected "
            f"{expected}); delete it and download it again"
        )


def check_idx(dataset: str, path: Path, dims: int) -> None:
    """An MNIST-family IDX file: unsigned bytes in ``dims`` dimensions (3 for images, 1 for
    labels), and exactly the bytes its header declares."""
    data = path.read_bytes()
    problem = None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        problem = "not an IDX file (bad magic number)"
    elif data[2] != 0x08 or data[3] != dims:
        kind = IDX_NAMES.get(data[2], "float64")
        problem = (
            f"its header declares {kind} data in {data[3]} dimensions; MNIST-family files "
            f"hold uint8 in {dims}"
        )
    else:
        header = 4 + 4 * dims
        shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
        expected = header + math.prod(shape)
        if len(data) != expected:
            problem = f"{len(data)} bytes but its header {shape} needs {expected}"
    if problem:
        raise DatasetError(
            f"dataset {dataset}: {path} is corrupt ({problem}); delete it and download it again"
        )


def extract_gz(dataset: str, path: Path, source: Path | None = None) -> None:
    """``path`` from ``source`` (default ``path.gz`` beside it: torchvision's download
    leaves both; Debian's dataset-fashion-mnist ships only the compressed files; a source
    not ending in .gz is copied). Written through a temporary file and a rename, which
    torchvision's extract_archive does not do, so a run stopped mid-way leaves nothing the
    next run would trust."""
    source = source if source is not None else path.with_name(path.name + ".gz")
    opener = gzip.open if source.suffix == ".gz" else open
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with opener(source, "rb") as compressed:
            replace_atomically(path, lambda f: shutil.copyfileobj(compressed, f))
    except (OSError, EOFError) as exc:
        raise DatasetError(
            f"dataset {dataset}: {source} could not be decompressed ({exc}); delete it and "
            "download it again"
        ) from exc
