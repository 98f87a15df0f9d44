"""Datasets: a registry of loaders and the device-resident ImageData they return."""

from adaptrun.data.images import ImageData, Split, batch_indices, channel_stats, normalize
from adaptrun.data.placement import PLACEMENTS, choose_placement, place
from adaptrun.data.registry import DATASETS, check_dataset, load_dataset

__all__ = [
    "DATASETS",
    "PLACEMENTS",
    "ImageData",
    "Split",
    "batch_indices",
    "channel_stats",
    "check_dataset",
    "choose_placement",
    "load_dataset",
    "normalize",
    "place",
]
