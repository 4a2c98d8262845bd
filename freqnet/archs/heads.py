"""Heads: texture refinement before upsampling, and the reconstruction to image space (PixelShuffle or DySample)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .reparam import Conv3XC


def zero_init(conv: nn.Conv2d) -> None:
    """The last conv starts at zero, so an untrained model *is* its global residual (bicubic upsampling) and
    training only ever adds detail: measured here, a randomly initialised head cost ~30 dB at step 0 and made
    the EMA weights lag far behind for hundreds of steps."""
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)


class TextureRefinementHead(nn.Module):
    """Local detail polish (DetailRefinerNet lineage): two re-parameterisable 3x3 convs on a residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = Conv3XC(channels, channels)
        self.conv2 = Conv3XC(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.gelu(self.conv1(x)))


class PixelShuffleHead(nn.Module):
    """3x3 conv to out*s^2 channels, then sub-pixel rearrangement. At scale 1 it is a plain 3x3 conv."""

    def __init__(self, channels: int, out_channels: int, scale: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, out_channels * scale * scale, 3, padding=1)
        zero_init(self.conv)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv(x))


class DySample(nn.Module):
    """Content-aware point sampling (DySample, static scope): each output pixel bilinearly samples the input at
    its sub-pixel position plus a learned offset; with zero offsets it is exactly bilinear upsampling."""

    def __init__(self, channels: int, scale: int, groups: int = 4) -> None:
        super().__init__()
        self.scale, self.groups = scale, groups
        self.offset = nn.Conv2d(channels, 2 * groups * scale * scale, 1)
        nn.init.normal_(self.offset.weight, std=1e-3)
        nn.init.zeros_(self.offset.bias)
        sub = (torch.arange(scale) - (scale - 1) / 2) / scale  # sub-pixel centres in input-pixel units
        dy, dx = torch.meshgrid(sub, sub, indexing="ij")
        init = torch.stack([dx, dy])[:, None].expand(2, groups, scale, scale)  # (xy, g, s, s)
        self.register_buffer("init_pos", init.reshape(1, -1, 1, 1).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        s, g = self.scale, self.groups
        offset = F.pixel_shuffle(self.offset(x) * 0.25 + self.init_pos, s)  # (B, 2g, sH, sW), input-pixel units
        offset = offset.view(b, 2, g, s * h, s * w)
        ys = torch.arange(s * h, device=x.device, dtype=x.dtype) // s
        xs = torch.arange(s * w, device=x.device, dtype=x.dtype) // s
        px = xs[None, None, None, :] + offset[:, 0]  # (B, g, sH, sW)
        py = ys[None, None, :, None] + offset[:, 1]
        grid = torch.stack([2 * (px + 0.5) / w - 1, 2 * (py + 0.5) / h - 1], dim=-1)
        sampled = F.grid_sample(x.reshape(b * g, c // g, h, w), grid.reshape(b * g, s * h, s * w, 2),
                                mode="bilinear", padding_mode="border", align_corners=False)
        return sampled.view(b, c, s * h, s * w)


class DySampleHead(nn.Module):
    """Narrow the features, DySample them up, then a 3x3 conv to image channels."""

    def __init__(self, channels: int, out_channels: int, scale: int, groups: int = 4) -> None:
        super().__init__()
        self.narrow = nn.Conv2d(channels, channels, 3, padding=1)
        self.upsample = DySample(channels, scale, groups)
        self.to_image = nn.Conv2d(channels, out_channels, 3, padding=1)
        zero_init(self.to_image)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.upsample(self.narrow(x)))


def build_reconstruction_head(kind: str, channels: int, out_channels: int, scale: int) -> nn.Module:
    """DySample needs something to upsample; at scale 1 both kinds are the same plain conv head."""
    if kind == "dysample" and scale > 1:
        return DySampleHead(channels, out_channels, scale)
    return PixelShuffleHead(channels, out_channels, scale)


def cubic_taps(t: float, a: float = -0.75) -> list[float]:
    """Keys' cubic convolution weights (a = -0.75, PyTorch's and OpenCV's) of the 4 neighbours at fraction t."""
    def kernel(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return ((a + 2) * x - (a + 3)) * x * x + 1
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a if x < 2 else 0.0
    return [kernel(1 + t), kernel(t), kernel(1 - t), kernel(2 - t)]


class BicubicUpsample(nn.Module):
    """`F.interpolate(x, scale_factor=s, mode="bicubic")` (align_corners=False, borders clamped) as one grouped 5x5
    conv to s*s phases + pixel shuffle. Same numbers to float rounding, but every runtime runs it as fast as any
    conv: ONNX Runtime's cubic Resize took 15% of the exported x4 model's time."""

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__()
        self.channels, self.scale = channels, scale
        phases = []
        for p in range(scale):  # output row (col) s*i + p reads input rows i + d - 1 ... i + d + 2
            source = (p + 0.5) / scale - 0.5
            offset = math.floor(source)
            taps = torch.zeros(5)
            taps[offset + 1: offset + 5] = torch.tensor(cubic_taps(source - offset))
            phases.append(taps)
        rows = torch.stack(phases)  # (s, 5): separable, the same along both axes
        weight = (rows[:, None, :, None] * rows[None, :, None, :]).reshape(scale * scale, 5, 5)
        # Kept 3-D: the model's channels-last conversion would give a (N, 1, 5, 5) buffer strides that DDP's buffer
        # broadcast rejects as self-overlapping.
        self.register_buffer("weight", weight.repeat(channels, 1, 1), persistent=False)

    def _apply(self, fn, recurse=True):
        """Moves follow the model; dtype casts do not: taps rounded to bf16 would move the image itself by up to
        2e-3 (the network runs this path in fp32 at every precision)."""
        taps = self.weight
        super()._apply(fn, recurse)
        self.weight = taps.to(self.weight.device)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (2, 2, 2, 2), mode="replicate")
        return F.pixel_shuffle(F.conv2d(x, self.weight[:, None].to(x.dtype), groups=self.channels), self.scale)
