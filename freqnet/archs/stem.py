"""Shallow stem: lift pixels to features with one 3x3 conv (RRDB/NAFNet stems)."""

from __future__ import annotations

import torch
from torch import nn


class ShallowStem(nn.Module):
    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)
