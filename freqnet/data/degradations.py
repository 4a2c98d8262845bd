"""Degradation operators on float32 (H, W, C) images in [0, 1]. Each takes explicit parameters; sampling
them from ranges is the recipe's job (`recipes.py`), so every operator is deterministic and testable."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .resize import imresize

RESIZE_MODES = ("area", "bilinear", "bicubic")


def blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every channel with `kernel` (reflect borders, like cv2.filter2D's default)."""
    pad, channels = kernel.shape[0] // 2, image.shape[2]
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()  # NHWC memory: fast on CPU
    mode = "reflect" if min(image.shape[:2]) > pad else "replicate"
    x = F.pad(x, (pad, pad, pad, pad), mode=mode).contiguous(memory_format=torch.channels_last)
    k = torch.from_numpy(kernel).float().expand(channels, 1, *kernel.shape)
    return F.conv2d(x, k, groups=channels)[0].permute(1, 2, 0).contiguous().numpy()


def resize(image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize to (H, W) with torch's area/bilinear/bicubic (Real-ESRGAN's random modes) or MATLAB bicubic."""
    if mode == "matlab_bicubic":
        return imresize(image, size=size).astype(np.float32)
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r}: allowed {RESIZE_MODES + ('matlab_bicubic',)}")
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    kwargs = {} if mode == "area" else {"align_corners": False}
    if mode == "bicubic":
        kwargs["antialias"] = size[0] < image.shape[0]
    return F.interpolate(x, size=size, mode=mode, **kwargs)[0].numpy().transpose(1, 2, 0)


def gaussian_noise(image: np.ndarray, sigma: float, grey: bool, rng: np.random.Generator) -> np.ndarray:
    """Add N(0, sigma/255); grey noise is one draw shared by all channels (luminance noise)."""
    shape = image.shape[:2] + ((1,) if grey else (image.shape[2],))
    return image + (rng.standard_normal(shape) * (sigma / 255.0)).astype(np.float32)


def poisson_noise(image: np.ndarray, scale: float, grey: bool, rng: np.random.Generator) -> np.ndarray:
    """Shot noise as in Real-ESRGAN: the number of photon levels follows the image's distinct values."""
    source = image.mean(axis=2, keepdims=True) if grey else image
    levels = len(np.unique(np.round(np.clip(source, 0, 1) * 255)))
    levels = 2 ** np.ceil(np.log2(max(levels, 2)))
    noisy = rng.poisson(np.clip(source, 0, 1) * levels) / levels
    return image + ((noisy - source) * scale).astype(np.float32)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through a real JPEG encoder (libjpeg via Pillow) at `quality`."""
    array = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    grey = array.shape[2] == 1
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if grey else array).save(buffer, format="JPEG", quality=int(quality))
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255.0
    return decoded[..., None] if grey else decoded
