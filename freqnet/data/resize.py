"""MATLAB-compatible `imresize(..., 'bicubic')`: the LR of the classical SR benchmarks.

Cubic kernel a = -0.5, widened by 1/scale when shrinking (antialiasing), symmetric (mirror) borders. Each
axis is one matrix product with a precomputed weight matrix, so the result is exact and fast.
"""

from __future__ import annotations

import functools
import math

import numpy as np


def cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


@functools.lru_cache(maxsize=128)
def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """(out_len, in_len) float64 weights of MATLAB's `contributions` with mirrored out-of-range taps."""
    width = 4.0
    if scale < 1 and antialias:
        kernel = lambda x: scale * cubic(scale * x)  # noqa: E731
        width = width / scale
    else:
        kernel = cubic
    out = np.arange(1, out_len + 1, dtype=np.float64)
    centre = out / scale + 0.5 * (1 - 1 / scale)  # 1-based input coordinate of each output pixel
    left = np.floor(centre - width / 2)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based
    weights = kernel(centre[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])  # symmetric padding
    source = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
    matrix = np.zeros((out_len, in_len))
    np.add.at(matrix, (np.repeat(np.arange(out_len), taps), source.ravel()), weights.ravel())
    return matrix


def imresize(image: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None,
             antialias: bool = True) -> np.ndarray:
    """Resize an (H, W[, C]) float image like MATLAB: give `scale` (output = ceil(input * scale)) or `size`."""
    h, w = image.shape[:2]
    if size is None:
        if scale is None:
            raise ValueError("imresize needs scale or size")
        size = (math.ceil(h * scale), math.ceil(w * scale))
        scales = (scale, scale)
    else:
        scales = (size[0] / h, size[1] / w)
    rows = resize_matrix(h, size[0], scales[0], antialias)
    cols = resize_matrix(w, size[1], scales[1], antialias)
    data = image.astype(np.float64)
    out = (rows @ data.reshape(h, -1)).reshape((size[0], w) + image.shape[2:])  # along H
    out = np.tensordot(cols, out, axes=([1], [1])).swapaxes(0, 1)  # along W, back to (H, W, ...)
    return np.ascontiguousarray(out).astype(image.dtype if image.dtype.kind == "f" else np.float64)
