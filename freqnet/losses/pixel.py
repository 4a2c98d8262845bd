"""Pixel-space losses: L1 (on RGB or on PSNR-Y's luma), MSE, Charbonnier, SSIM / MS-SSIM (differentiable), and an
FFT (frequency) L1."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..metrics import Y_WEIGHTS


class L1Loss(nn.Module):
    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(output, target)


class LumaL1Loss(nn.Module):
    """L1 on the Y channel the benchmarks score (BT.601, `freqnet.metrics`): the error PSNR-Y sees, chroma free.

    Pair it with a smaller RGB `l1` weight so colour stays anchored; the constant offset of Y cancels."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if output.shape[1] != 3:
            return F.l1_loss(output, target)
        weights = torch.tensor(Y_WEIGHTS / 255.0, dtype=output.dtype, device=output.device).view(1, 3, 1, 1)
        return F.l1_loss((output * weights).sum(1), (target * weights).sum(1))


class MSELoss(nn.Module):
    """Mean squared error: what PSNR measures, so a last low-lr stage on it after L1 buys PSNR (RLFN, RFDN)."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output, target)


class CharbonnierLoss(nn.Module):
    """sqrt((x - y)^2 + eps^2): L1 that is smooth at zero."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((output - target).square() + self.eps**2).mean()


def gaussian_kernel(size: int = 11, sigma: float = 1.5, channels: int = 3, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_terms(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel SSIM map and contrast-structure map, 'valid' filtering, images in [0, 1]."""
    c1, c2 = 0.01**2, 0.03**2
    channels = x.shape[1]

    def blur(t):
        return F.conv2d(t, kernel, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    return ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)) * cs, cs


class SSIMLoss(nn.Module):
    """1 - SSIM (11x11 Gaussian, sigma 1.5, per channel), computed in fp32: 0 for identical images."""

    def __init__(self, window: int = 11, sigma: float = 1.5) -> None:
        super().__init__()
        self.window, self.sigma = window, sigma

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x, y = output.float(), target.float()
        window = min(self.window, x.shape[-1], x.shape[-2]) | 1
        kernel = gaussian_kernel(window, self.sigma, x.shape[1], x.device)
        ssim_map, _ = ssim_terms(x, y, kernel)
        return 1.0 - ssim_map.mean()


class MSSSIMLoss(nn.Module):
    """1 - MS-SSIM (Wang et al. 2003 weights); scales stop early on small patches."""

    WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x, y = output.float(), target.float()
        values = []
        for level, weight in enumerate(self.WEIGHTS):
            window = min(11, x.shape[-1], x.shape[-2]) | 1
            kernel = gaussian_kernel(window, 1.5, x.shape[1], x.device)
            ssim_map, cs = ssim_terms(x, y, kernel)
            last = level == len(self.WEIGHTS) - 1 or min(x.shape[-2:]) < 22
            values.append((ssim_map if last else cs).mean().clamp(min=1e-6))
            if last:
                break
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        weights = torch.tensor(self.WEIGHTS[: len(values)], device=x.device)
        weights = weights / weights.sum()
        return 1.0 - torch.prod(torch.stack(values) ** weights)


class FFTLoss(nn.Module):
    """L1 between the 2-D spectra (real and imaginary parts): penalises missing high frequencies directly."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        a = torch.view_as_real(torch.fft.rfft2(output.float(), norm="ortho"))
        b = torch.view_as_real(torch.fft.rfft2(target.float(), norm="ortho"))
        return F.l1_loss(a, b)
