"""HF path block: partial large kernel + gated CNN + a dynamic channel gate (the HF gain). Conv only, for speed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .reparam import Conv3XC, PartialLargeKernelConv


class GatedConv(nn.Module):
    """Gated CNN (MambaOut/GateRV3 lineage): pointwise expand, depthwise conv on the value half, multiply by
    the GELU of the gate half, pointwise project."""

    def __init__(self, channels: int, expansion: float) -> None:
        super().__init__()
        hidden = max(4, int(channels * expansion))
        self.gate = nn.Conv2d(channels, hidden, 1)  # two convs, not one split: channel slices of NHWC maps copy
        self.value = nn.Conv2d(channels, hidden, 1)
        self.depthwise = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.project = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(F.gelu(self.gate(x)) * self.depthwise(self.value(x)))


class DynamicChannelGate(nn.Module):
    """Per-channel gain in (0, 2) from the features themselves, initialised near 1.

    Statistics are pooled over window-sized cells, not the whole image (as NAFNet's SCA does), so the gain
    is local and a tiled forward matches a whole-image one; cell gains are interpolated to avoid blocks.
    """

    def __init__(self, channels: int, cell: int, reduction: int = 4) -> None:
        super().__init__()
        self.cell = cell
        hidden = max(4, channels // reduction)
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)
        nn.init.zeros_(self.excite.weight)
        nn.init.zeros_(self.excite.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, self.cell, self.cell, ceil_mode=True)
        gain = 2.0 * torch.sigmoid(self.excite(F.gelu(self.squeeze(pooled))))
        return x * F.interpolate(gain, size=x.shape[-2:], mode="bilinear", align_corners=False)


class HFBlock(nn.Module):
    """Re-parameterisable 3x3 -> partial large kernel -> gated conv -> dynamic channel gate, residual."""

    def __init__(self, channels: int, plk_kernel: int, plk_ratio: float, expansion: float, cell: int) -> None:
        super().__init__()
        self.local = Conv3XC(channels, channels)
        self.large_kernel = PartialLargeKernelConv(channels, plk_kernel, plk_ratio)
        self.gated = GatedConv(channels, expansion)
        self.channel_gate = DynamicChannelGate(channels, cell)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.large_kernel(F.gelu(self.local(x)))
        return x + self.channel_gate(self.gated(y))
