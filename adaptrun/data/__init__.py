"""Datasets: a registry of loaders and the device-resident ImageData they return."""

from adaptrun.core.registry import discover
from adaptrun.data.images import (
    ImageData,
    Split,
    batch_indices,
    channel_stats,
    standardize,
    to_unit,
)
from adaptrun.data.placement import PLACEMENTS, choose_placement, place
from adaptrun.data.protocols import PROTOCOLS, check_protocol
from adaptrun.data.registry import DATASETS, load_dataset

discover(__name__)

__all__ = [
    "DATASETS",
    "PLACEMENTS",
    "PROTOCOLS",
    "ImageData",
    "Split",
    "batch_indices",
    "channel_stats",
    "check_protocol",
    "choose_placement",
    "load_dataset",
    "place",
    "standardize",
    "to_unit",
]
