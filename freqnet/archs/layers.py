"""Small building blocks shared by several modules."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm over channels of an NCHW map (Restormer's per-pixel norm), so conv layouts need no reshaping."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.channels, self.eps = channels, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, (self.channels,), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class DropPath(nn.Module):
    """Stochastic depth: drops a residual branch per sample in training, rescaling the survivors."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GDFN(nn.Module):
    """Restormer's gated depthwise FFN: the dense feed-forward used wherever MoE is off."""

    def __init__(self, channels: int, expansion: float) -> None:
        super().__init__()
        hidden = max(4, int(channels * expansion))
        # Value and gate halves as separate convs: channel slices of NHWC maps would force copies.
        self.value = nn.Sequential(nn.Conv2d(channels, hidden, 1),
                                   nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden))
        self.gate = nn.Sequential(nn.Conv2d(channels, hidden, 1),
                                  nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden))
        self.project = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(F.gelu(self.value(x)) * self.gate(x))
