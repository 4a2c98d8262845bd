"""LF path block: local conv, shifted-window attention, GDFN. Structure and long-range consistency."""

from __future__ import annotations

import torch
from torch import nn

from .layers import GDFN, DropPath, LayerNorm2d
from .window_attention import WindowAttention


class ConvMixer(nn.Module):
    """Attention stand-in for the all-conv ablation: a depthwise 7x7 then a pointwise conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 7, padding=3, groups=channels)
        self.pointwise = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def build_token_mixer(channels: int, heads: int, window: int, shift: bool, use_attention: bool,
                      prune_threshold: float) -> nn.Module:
    if use_attention:
        return WindowAttention(channels, heads, window, shift, prune_threshold)
    return ConvMixer(channels)


class TransformerBlock(nn.Module):
    """Pre-norm token mixer + feed-forward, each a residual with drop-path. The FFN is injected (GDFN or MoE)."""

    def __init__(self, channels: int, mixer: nn.Module, ffn: nn.Module, drop_path: float) -> None:
        super().__init__()
        self.norm1, self.mixer = LayerNorm2d(channels), mixer
        self.norm2, self.ffn = LayerNorm2d(channels), ffn
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.mixer(self.norm1(x)))
        return x + self.drop_path(self.ffn(self.norm2(x)))


class LFBlock(nn.Module):
    """Conv + WindowAttn + GDFN: a depthwise 3x3 adds local structure (and position cues) before attention."""

    def __init__(self, channels: int, heads: int, window: int, shift: bool, expansion: float,
                 use_attention: bool, drop_path: float, prune_threshold: float) -> None:
        super().__init__()
        self.local = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        mixer = build_token_mixer(channels, heads, window, shift, use_attention, prune_threshold)
        self.transformer = TransformerBlock(channels, mixer, GDFN(channels, expansion), drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transformer(x + self.local(x))
