"""Blur kernels of the Real-ESRGAN family plus motion blur. Every kernel is float64, odd-sized, sums to 1."""

from __future__ import annotations

import math

import numpy as np

KERNEL_TYPES = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    half = size // 2
    return np.meshgrid(np.arange(-half, half + 1, dtype=np.float64), np.arange(-half, half + 1, dtype=np.float64),
                       indexing="xy")


def inverse_covariance(sigma_x: float, sigma_y: float, angle: float) -> np.ndarray:
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    covariance = rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T
    return np.linalg.inv(covariance)


def quadratic_form(size: int, sigma_x: float, sigma_y: float, angle: float) -> np.ndarray:
    """x^T Sigma^-1 x on the kernel grid."""
    xx, yy = grid(size)
    inv = inverse_covariance(sigma_x, sigma_y, angle)
    return inv[0, 0] * xx**2 + (inv[0, 1] + inv[1, 0]) * xx * yy + inv[1, 1] * yy**2


def normalised(kernel: np.ndarray) -> np.ndarray:
    return kernel / kernel.sum()


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None, angle: float = 0.0) -> np.ndarray:
    """Isotropic when sigma_y is None, else anisotropic rotated by `angle` (radians)."""
    return normalised(np.exp(-0.5 * quadratic_form(size, sigma_x, sigma_x if sigma_y is None else sigma_y, angle)))


def generalized_gaussian_kernel(size: int, sigma_x: float, sigma_y: float, angle: float, beta: float) -> np.ndarray:
    """exp(-0.5 (x^T S^-1 x)^beta): beta < 1 heavier tails, beta > 1 flatter top than a Gaussian."""
    return normalised(np.exp(-0.5 * quadratic_form(size, sigma_x, sigma_y, angle) ** beta))


def plateau_kernel(size: int, sigma_x: float, sigma_y: float, angle: float, beta: float) -> np.ndarray:
    """1 / (1 + (x^T S^-1 x)^beta): a flat top with slowly decaying tails."""
    return normalised(1.0 / (1.0 + quadratic_form(size, sigma_x, sigma_y, angle) ** beta))


def bessel_j1(x: np.ndarray) -> np.ndarray:
    """Bessel function of the first kind, order 1 (rational approximations, |error| < 1e-8), so the core
    needs no SciPy."""
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    out = np.empty_like(ax)
    small = ax < 8.0
    y = x[small] ** 2
    num = x[small] * (72362614232.0 + y * (-7895059235.0 + y * (242396853.1 + y * (-2972611.439 + y * (
        15704.48260 + y * (-30.16036606))))))
    den = 144725228442.0 + y * (2300535178.0 + y * (18583304.74 + y * (99447.43394 + y * (376.9991397 + y))))
    out[small] = num / den
    big = ~small
    z = 8.0 / ax[big]
    y = z * z
    xx = ax[big] - 2.356194491
    p = 1.0 + y * (0.183105e-2 + y * (-0.3516396496e-4 + y * (0.2457520174e-5 + y * (-0.240337019e-6))))
    q = 0.04687499995 + y * (-0.2002690873e-3 + y * (0.8449199096e-5 + y * (-0.88228987e-6 + y * 0.105787412e-6)))
    out[big] = np.sqrt(0.636619772 / ax[big]) * (np.cos(xx) * p - z * np.sin(xx) * q) * np.sign(x[big])
    return out


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """2-D circular low-pass (ringing/overshoot artifacts): cutoff * J1(cutoff r) / (2 pi r), cutoff in rad/px."""
    xx, yy = grid(size)
    r = np.hypot(xx, yy)
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = cutoff * bessel_j1(cutoff * r) / (2 * np.pi * r)
    kernel[r == 0] = cutoff**2 / (4 * np.pi)
    return normalised(kernel)


def motion_kernel(size: int, length: float, angle: float, samples_per_pixel: int = 8) -> np.ndarray:
    """A straight camera-shake streak of `length` pixels at `angle` (radians), bilinearly splatted."""
    length = min(length, size - 1)
    kernel = np.zeros((size, size))
    centre = size // 2
    steps = max(2, int(length * samples_per_pixel))
    t = np.linspace(-length / 2, length / 2, steps)
    xs, ys = centre + t * math.cos(angle), centre - t * math.sin(angle)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        cx, cy = np.clip(x0 + dx, 0, size - 1), np.clip(y0 + dy, 0, size - 1)
        np.add.at(kernel, (cy, cx), weight)
    return normalised(kernel)


def random_mixed_kernel(rng: np.random.Generator, size: int, kind: str, sigma_range: tuple[float, float],
                        beta_gaussian: tuple[float, float], beta_plateau: tuple[float, float]) -> tuple[np.ndarray, dict]:
    """One kernel of `kind` with parameters drawn from the ranges; returns it with the parameters it used."""
    sigma_x = float(rng.uniform(*sigma_range))
    isotropic = kind.endswith("iso") and not kind.endswith("aniso")
    sigma_y = sigma_x if isotropic else float(rng.uniform(*sigma_range))
    angle = 0.0 if isotropic else float(rng.uniform(-math.pi, math.pi))
    params = {"kernel": kind, "size": size, "sigma_x": sigma_x, "sigma_y": sigma_y, "angle": angle}
    if kind.startswith("generalized"):
        # Real-ESRGAN draws beta below 1 or above 1 with equal odds, so both tail shapes are common
        beta = float(rng.uniform(beta_gaussian[0], 1) if rng.random() < 0.5 else rng.uniform(1, beta_gaussian[1]))
        params["beta"] = beta
        return generalized_gaussian_kernel(size, sigma_x, sigma_y, angle, beta), params
    if kind.startswith("plateau"):
        beta = float(rng.uniform(beta_plateau[0], 1) if rng.random() < 0.5 else rng.uniform(1, beta_plateau[1]))
        params["beta"] = beta
        return plateau_kernel(size, sigma_x, sigma_y, angle, beta), params
    return gaussian_kernel(size, sigma_x, sigma_y, angle), params
