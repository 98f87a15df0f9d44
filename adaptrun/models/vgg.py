"""The shallow VGG-style CIFAR baseline used by the AdAct paper (1, 2 or 3 blocks)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

ActFactory = Callable[[Sequence[int]], nn.Module]


class VGG(nn.Module):
    """Blocks of conv3x3 -> act -> conv3x3 -> act -> maxpool2, then dense -> act -> dense.

    Each activation gets the shape of the feature map it sees, so per-element slopes
    know their size.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        filters: Sequence[int],
        dense: int,
        num_classes: int,
        act: ActFactory,
    ) -> None:
        super().__init__()
        channels, height, width = in_shape
        blocks: list[nn.Module] = []
        for out in filters:
            blocks += [
                nn.Conv2d(channels, out, 3, padding=1),
                act((out, height, width)),
                nn.Conv2d(out, out, 3, padding=1),
                act((out, height, width)),
                nn.MaxPool2d(2),
            ]
            channels, height, width = out, height // 2, width // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, dense),
            act((dense,)),
            nn.Linear(dense, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
