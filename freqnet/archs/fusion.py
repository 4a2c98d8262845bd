"""Cross-frequency fusion: each path receives a sigmoid-gated message from the other (1x1 convs only)."""

from __future__ import annotations

import torch
from torch import nn


class CrossFrequencyFusion(nn.Module):
    """`lf += sigmoid(g_lf) * msg_hf_to_lf`, `hf += sigmoid(g_hf) * msg_lf_to_hf`; gates see both paths."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gates = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.hf_to_lf = nn.Conv2d(channels, channels, 1)
        self.lf_to_hf = nn.Conv2d(channels, channels, 1)

    def forward(self, lf: torch.Tensor, hf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gate_lf, gate_hf = torch.sigmoid(self.gates(torch.cat([lf, hf], dim=1))).chunk(2, dim=1)
        return lf + gate_lf * self.hf_to_lf(hf), hf + gate_hf * self.lf_to_hf(lf)
