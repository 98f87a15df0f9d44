"""Where a dataset lives during training: on the device, or pinned host memory if too big."""

from __future__ import annotations

import logging

import torch

from adaptrun.data.images import ImageData

log = logging.getLogger(__name__)

PLACEMENTS = ("auto", "device", "host")
DEVICE_SHARE = (
    0.5  # auto keeps data on the device only if it needs at most this share of free memory
)


def choose_placement(mode: str, nbytes: int, free_bytes: int | None) -> str:
    """``device`` or ``host``; ``free_bytes`` is None when the device is the host itself."""
    if mode != "auto":
        return mode
    if free_bytes is None:
        return "device"
    return "device" if nbytes <= DEVICE_SHARE * free_bytes else "host"


def place(data: ImageData, device: torch.device, mode: str) -> ImageData:
    """Move the splits to ``device``, or pin them in host memory for asynchronous copies."""
    free = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    where = choose_placement(mode, data.nbytes, free)
    if where == "device" or device.type == "cpu":
        return data.to(device)
    log.info("dataset %s (%.1f GB) stays in pinned host memory", data.name, data.nbytes / 1e9)
    return data.pin() if device.type == "cuda" else data
