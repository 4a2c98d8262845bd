"""U-Net discriminator with spectral normalisation (Real-ESRGAN): a per-pixel real/fake map, so the
adversarial signal is local texture rather than a global verdict."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm


class UNetDiscriminatorSN(nn.Module):
    def __init__(self, in_channels: int = 3, features: int = 64) -> None:
        super().__init__()
        f = features
        self.conv0 = nn.Conv2d(in_channels, f, 3, padding=1)
        self.down1 = spectral_norm(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.down2 = spectral_norm(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.down3 = spectral_norm(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.up1 = spectral_norm(nn.Conv2d(f * 8, f * 4, 3, padding=1, bias=False))
        self.up2 = spectral_norm(nn.Conv2d(f * 4, f * 2, 3, padding=1, bias=False))
        self.up3 = spectral_norm(nn.Conv2d(f * 2, f, 3, padding=1, bias=False))
        self.refine1 = spectral_norm(nn.Conv2d(f, f, 3, padding=1, bias=False))
        self.refine2 = spectral_norm(nn.Conv2d(f, f, 3, padding=1, bias=False))
        self.out = nn.Conv2d(f, 1, 3, padding=1)

    @staticmethod
    def act(x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2)

    def up(self, conv: nn.Module, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.act(conv(x)) + skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.act(self.conv0(x))
        x1 = self.act(self.down1(x0))
        x2 = self.act(self.down2(x1))
        x3 = self.act(self.down3(x2))
        y = self.up(self.up1, x3, x2)
        y = self.up(self.up2, y, x1)
        y = self.up(self.up3, y, x0)
        y = self.act(self.refine2(self.act(self.refine1(y))))
        return self.out(y)
