"""Frequency splitter: LF (smooth structure) and HF (edges, texture) feature streams of the same size.

Both kinds are local filters, so a tiled forward sees the same LF/HF as a whole-image forward away from tile
borders: the FFT kind uses a Gaussian transfer function (a Gaussian kernel in space, no ringing) on a
replicate-padded map instead of a global ideal low-pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def replicate_pad(x: torch.Tensor, margin: int) -> torch.Tensor:
    """`F.pad(x, (m, m, m, m), mode="replicate")` from edge slices: the same values, and a backward (sums over
    expanded edges) that inductor compiles; its replication_pad2d backward fails on channels-last gradients (torch
    2.13, CPU)."""
    x = torch.cat([x[..., :1, :].expand(-1, -1, margin, -1), x, x[..., -1:, :].expand(-1, -1, margin, -1)], dim=-2)
    return torch.cat([x[..., :1].expand(-1, -1, -1, margin), x, x[..., -1:].expand(-1, -1, -1, margin)], dim=-1)


class FFTSplitter(nn.Module):
    """Low-pass in the Fourier domain with a per-channel (optionally learnable) Gaussian cut-off.

    `matrix_dft = True` computes the same filter as two real circulant matrix products built from
    elementary ops: `torch.fft` has no ONNX export, this form does, and its outputs match to float rounding.
    """

    margin = 8  # replicate padding against wrap-around of the periodic FFT

    def __init__(self, channels: int, cutoff: float, learnable: bool) -> None:
        super().__init__()
        log_cutoff = torch.full((channels,), math.log(cutoff))
        if learnable:
            self.log_cutoff = nn.Parameter(log_cutoff)
        else:
            self.register_buffer("log_cutoff", log_cutoff)
        self.matrix_dft = False

    def transfer(self, freqs: torch.Tensor) -> torch.Tensor:
        """Per-channel 1-D Gaussian response at `freqs` (cycles/pixel); the 2-D response is its outer product."""
        cutoff = self.log_cutoff.float().exp().clamp(max=0.5)[:, None]
        return torch.exp(-0.5 * (freqs[None, :] / cutoff) ** 2)

    def low_pass_fft(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        fy = torch.fft.fftfreq(h, device=x.device)
        fx = torch.fft.rfftfreq(w, device=x.device)
        response = self.transfer(fy)[:, :, None] * self.transfer(fx)[:, None, :]
        return torch.fft.irfft2(torch.fft.rfft2(x) * response, s=(h, w))

    def circulant(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """(C, n, n) real matrices A with A @ v == irfft(rfft(v) * response) for every channel."""
        k = torch.arange(n, device=like.device, dtype=torch.float32)
        freqs = torch.minimum(k, n - k) / n  # |fftfreq|; the response is even
        cosines = torch.cos(2 * math.pi * k[:, None] * k[None, :] / n)  # (frequency, lag)
        first_column = self.transfer(freqs) @ cosines / n  # (C, lag)
        lags = (k[:, None] - k[None, :]).remainder(n).long()
        return first_column[:, lags]

    def low_pass_matrix(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        rows, cols = self.circulant(h, x), self.circulant(w, x)
        x = torch.einsum("cij,bcjw->bciw", rows, x)
        return torch.einsum("bchj,cwj->bchw", x, cols)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.margin
        padded = replicate_pad(x.float(), m)
        low = self.low_pass_matrix(padded) if self.matrix_dft else self.low_pass_fft(padded)
        low = low[..., m:-m, m:-m].to(x.dtype).contiguous(memory_format=torch.channels_last)
        return low, x - low


class LaplacianSplitter(nn.Module):
    """One Laplacian-pyramid level: a fixed 5x5 binomial blur is LF, the residual is HF."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
        kernel = (taps[:, None] * taps[None, :]).expand(channels, 1, 5, 5).clone()
        self.register_buffer("kernel", kernel, persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        padded = replicate_pad(x, 2)
        low = F.conv2d(padded, self.kernel.to(x.dtype), groups=self.channels)
        return low, x - low


def build_splitter(kind: str, channels: int, cutoff: float, learnable: bool) -> nn.Module:
    if kind == "fft":
        return FFTSplitter(channels, cutoff, learnable)
    return LaplacianSplitter(channels)
