"""Datasets: a registry of loaders and the device-resident ImageData they return."""

from adaptrun.data.images import ImageData, Split, batch_indices, channel_stats, normalize
from adaptrun.data.registry import LOADERS, check_dataset, load_dataset

__all__ = [
    "LOADERS",
    "ImageData",
    "Split",
    "batch_indices",
    "channel_stats",
    "check_dataset",
    "load_dataset",
    "normalize",
]
