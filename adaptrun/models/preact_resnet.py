"""Pre-activation ResNet-18 (He et al. 2016), with an activation module per call site."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from adaptrun.models.registry import MODELS, ActFactory, ModelConfig, ModelEntry


def _down(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # 3x3 convolution, padding 1


class PreActBlock(nn.Module):
    """BN -> act -> conv3x3 -> BN -> act -> conv3x3, plus the shortcut.

    Each slope multiplies the BatchNorm output right before its activation.
    """

    def __init__(
        self, cin: int, cout: int, stride: int, size: tuple[int, int], act: ActFactory
    ) -> None:
        super().__init__()
        h, w = size
        self.bn1 = nn.BatchNorm2d(cin)
        self.act1 = act((cin, h, w))
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = act((cout, _down(h, stride), _down(w, stride)))
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.act2(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """Stem conv3x3 -> 4 stages of 2 blocks (64, 128, 256, 512) -> BN -> act -> pool -> fc.

    A 3x3 stride-1 stem (the CIFAR variant) and global average pooling let it take
    1- or 3-channel images of any size.
    """

    widths = (64, 128, 256, 512)

    def __init__(self, in_shape: Sequence[int], num_classes: int, act: ActFactory) -> None:
        super().__init__()
        channels, h, w = in_shape
        self.stem = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
        blocks: list[nn.Module] = []
        cin = 64
        for stage, cout in enumerate(self.widths):
            for i in range(2):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(PreActBlock(cin, cout, stride, (h, w), act))
                h, w, cin = _down(h, stride), _down(w, stride), cout
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(cin)
        self.act = act((cin, h, w))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn(self.blocks(self.stem(x))))
        return self.fc(out.mean(dim=(2, 3)))


@dataclasses.dataclass
class PreActResNetConfig(ModelConfig):
    name: str = "preact_resnet18"


MODELS.register(
    ModelEntry(
        name="preact_resnet18",
        config=PreActResNetConfig,
        build=lambda cfg, shape, classes, act: PreActResNet18(shape, classes, act),
    )
)
