"""Re-parameterisable convolutions: several linear branches in training, one convolution after `fuse_`.

Each layer keeps its fusion beside its forward, so the proof of equivalence is read in one place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Conv3XC(nn.Module):
    """SPAN-style 3x3 conv trained as 1x1 expand -> 3x3 -> 1x1 reduce, plus a 1x1 skip.

    The input is zero-padded *before* the expand so the expand's bias also reaches the border taps; this makes
    the fused 3x3 conv with zero padding exactly equal to the training form, borders included.
    """

    def __init__(self, in_channels: int, out_channels: int, gain: int = 2) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.expand = nn.Conv2d(in_channels, in_channels * gain, 1)
        self.spatial = nn.Conv2d(in_channels * gain, out_channels * gain, 3)
        self.reduce = nn.Conv2d(out_channels * gain, out_channels, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1)
        self.fused: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        branch = self.reduce(self.spatial(self.expand(F.pad(x, (1, 1, 1, 1)))))
        return branch + self.skip(x)

    @torch.no_grad()
    def fuse_(self) -> None:
        expand = self.expand.weight[:, :, 0, 0]  # (gi, i)
        reduce = self.reduce.weight[:, :, 0, 0]  # (o, go)
        spatial = self.spatial.weight  # (go, gi, 3, 3)
        weight = torch.einsum("om,mnhw,ni->oihw", reduce, spatial, expand)
        weight[:, :, 1, 1] += self.skip.weight[:, :, 0, 0]
        mid_bias = torch.einsum("mnhw,n->m", spatial, self.expand.bias) + self.spatial.bias
        bias = reduce @ mid_bias + self.reduce.bias + self.skip.bias
        fused = nn.Conv2d(self.in_channels, self.out_channels, 3, padding=1).to(weight)
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
        self.fused = fused
        del self.expand, self.spatial, self.reduce, self.skip


class PartialLargeKernelConv(nn.Module):
    """PLKSR's partial large kernel: a dense KxK conv on the first `ratio` of channels, the rest untouched.

    Training adds parallel branches on the same channels (a 5x5, a dilated 3x3, identity) that widen the
    optimisation landscape; they are all linear, so `fuse_` zero-pads each to KxK and sums them into one conv.
    """

    def __init__(self, channels: int, kernel: int, ratio: float, small_kernel: int = 5, dilation: int = 3) -> None:
        super().__init__()
        self.conv_channels = max(1, round(channels * ratio))
        self.kernel = kernel
        self.small_kernel = min(small_kernel, kernel)
        self.dilation = min(dilation, (kernel - 1) // 2)
        c = self.conv_channels
        self.large = nn.Conv2d(c, c, kernel, padding=kernel // 2)
        self.small = nn.Conv2d(c, c, self.small_kernel, padding=self.small_kernel // 2)
        self.dilated = nn.Conv2d(c, c, 3, padding=self.dilation, dilation=self.dilation)
        self.fused: nn.Conv2d | None = None

    def mix(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        return self.large(x) + self.small(x) + self.dilated(x) + x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head, tail = x[:, : self.conv_channels], x[:, self.conv_channels :]
        return torch.cat([self.mix(head), tail], dim=1)

    @torch.no_grad()
    def fuse_(self) -> None:
        k, c = self.kernel, self.conv_channels
        weight = self.large.weight.clone()
        pad = (k - self.small_kernel) // 2
        weight += F.pad(self.small.weight, (pad, pad, pad, pad))
        dilated = torch.zeros(c, c, 2 * self.dilation + 1, 2 * self.dilation + 1).to(weight)
        dilated[:, :, :: self.dilation, :: self.dilation] = self.dilated.weight
        pad = (k - dilated.shape[-1]) // 2
        weight += F.pad(dilated, (pad, pad, pad, pad))
        weight[torch.arange(c), torch.arange(c), k // 2, k // 2] += 1.0  # identity branch
        fused = nn.Conv2d(c, c, k, padding=k // 2).to(weight)
        fused.weight.copy_(weight)
        fused.bias.copy_(self.large.bias + self.small.bias + self.dilated.bias)
        self.fused = fused
        del self.large, self.small, self.dilated
