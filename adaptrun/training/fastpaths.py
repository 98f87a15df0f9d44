"""The trainer's CUDA fast paths: bf16 autocast, channels-last, cuDNN autotuning.

``auto`` (the default) turns each on where it pays and is safe: on CUDA, bf16 and
channels-last for image classification (tensor cores, cuDNN's NHWC kernels); never for
the regression and physics-informed tasks, whose input derivatives need fp32. On CPU
everything stays plain fp32 NCHW, the simple reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16")


@dataclasses.dataclass(frozen=True)
class FastPaths:
    precision: str  # fp32 | bf16
    channels_last: bool


def resolve(trainer: Mapping[str, Any], device: torch.device, images: bool) -> FastPaths:
    """The concrete choices for this device and a task with (or without) image inputs."""
    cuda = device.type == "cuda"
    precision = trainer["precision"]
    if precision == "auto":
        precision = "bf16" if cuda and images else "fp32"
    channels_last = trainer["channels_last"]
    if channels_last == "auto":
        channels_last = cuda and images and int(trainer.get("stack", 1)) == 1
    return FastPaths(precision, bool(channels_last))


def apply(fast: FastPaths, model: nn.Module, task: Any, device: torch.device) -> nn.Module:
    """Put the model (and the task's batches) in the chosen layout; autotune cuDNN on CUDA."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # input shapes are fixed within a run
    if fast.channels_last:
        model = model.to(memory_format=torch.channels_last)
        task.memory_format = torch.channels_last
    return model
