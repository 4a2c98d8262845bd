"""MSG down/up sampling between U-Net scales (Restormer style: conv, then pixel-unshuffle/shuffle)."""

from __future__ import annotations

import torch
from torch import nn


class Downsample(nn.Module):
    """Halve the resolution, double the channels: 3x3 conv to C/2, then pixel-unshuffle by 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels // 2, 3, padding=1), nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """Double the resolution, halve the channels: 1x1 conv to 2C, then pixel-shuffle by 2.

    1x1 rather than Restormer's 3x3: at the bottleneck's width a 3x3 here would hold a third of a small
    model's parameters, and the decoder blocks right after it mix space anyway."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels * 2, 1), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
