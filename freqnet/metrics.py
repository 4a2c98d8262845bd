"""PSNR and SSIM exactly as the field reports them (BasicSR's `calculate_psnr` / `calculate_ssim`).

1. quantise both images to uint8: clamp to [0, 1], round(x * 255);
2. crop `crop_border` pixels from every side;
3. optionally the Y channel: 16 + 65.481 R + 128.553 G + 24.966 B on RGB/255, scaled back by 255, *not* rounded;
4. PSNR in float64, inf for identical images; SSIM per channel with an 11x11 Gaussian (sigma 1.5), "valid"
   filtering, C1 = (0.01*255)^2, C2 = (0.03*255)^2, averaged over channels.
Training validation and `freqnet eval` both use this module, so their numbers agree to the last digit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

Y_WEIGHTS = np.array([65.481, 128.553, 24.966])


def quantise(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """float image in [0, 1] -> uint8 (H, W, C). Tensors may be (C, H, W) or (1, C, H, W)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu()
        image = image[0] if image.dim() == 4 else image
        image = image.permute(1, 2, 0).numpy()
    if image.dtype == np.uint8:
        return image if image.ndim == 3 else image[..., None]
    image = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return image if image.ndim == 3 else image[..., None]


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float64 Y (H, W, 1) in [16, 235]; grey images pass through as float64."""
    if image.shape[2] == 1:
        return image.astype(np.float64)
    y = np.dot(image.astype(np.float32) / 255.0, Y_WEIGHTS.astype(np.float32)) + 16.0
    return (y / 255.0 * 255.0).astype(np.float64)[..., None]


def prepare(image, crop_border: int, test_y_channel: bool) -> np.ndarray:
    image = quantise(image)
    if crop_border:
        image = image[crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_y(image) if test_y_channel else image.astype(np.float64)


def psnr(output, target, crop_border: int = 0, test_y_channel: bool = True) -> float:
    a, b = prepare(output, crop_border, test_y_channel), prepare(target, crop_border, test_y_channel)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    mse = np.mean((a - b) ** 2)
    return math.inf if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian (OpenCV's getGaussianKernel for sigma > 0)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D float64 image with the outer product of `window`."""
    from numpy.lib.stride_tricks import sliding_window_view

    rows = sliding_window_view(image, window.size, axis=0) @ window
    return sliding_window_view(rows, window.size, axis=1) @ window


def ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = gaussian_window()
    mu_a, mu_b = filter_valid(a, window), filter_valid(b, window)
    var_a = filter_valid(a * a, window) - mu_a**2
    var_b = filter_valid(b * b, window) - mu_b**2
    cov = filter_valid(a * b, window) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def ssim(output, target, crop_border: int = 0, test_y_channel: bool = True) -> float:
    a, b = prepare(output, crop_border, test_y_channel), prepare(target, crop_border, test_y_channel)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after cropping, got {a.shape[1]}x{a.shape[0]}")
    return float(np.mean([ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))
