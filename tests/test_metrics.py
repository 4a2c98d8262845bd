"""Golden values for the field's PSNR/SSIM convention, worked out by hand."""

import math

import numpy as np
import pytest

from freqnet import metrics


def test_psnr_hand_value_rgb():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 10, np.uint8)
    assert metrics.psnr(a, b, 0, test_y_channel=False) == pytest.approx(10 * math.log10(255**2 / 100))


def test_y_channel_of_pure_colours_is_not_rounded():
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 255
    assert metrics.rgb_to_y(red)[0, 0, 0] == pytest.approx(16 + 65.481, abs=1e-4)
    grey = np.full((1, 1, 3), 128, np.uint8)
    expected = 16 + (65.481 + 128.553 + 24.966) * 128 / 255
    assert metrics.rgb_to_y(grey)[0, 0, 0] == pytest.approx(expected, abs=1e-4)
    assert metrics.rgb_to_y(grey)[0, 0, 0] != round(expected)


def test_psnr_on_y_of_a_uniform_shift():
    a = np.full((6, 6, 3), 100, np.uint8)
    b = np.full((6, 6, 3), 110, np.uint8)
    dy = 10 * (65.481 + 128.553 + 24.966) / 255  # Y difference of a grey shift of 10
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / dy**2), rel=1e-6)


def test_float_inputs_are_quantised_first():
    a = np.full((4, 4, 3), 0.5, np.float32)  # round(127.5) = 128
    b = np.full((4, 4, 3), 128 / 255, np.float32)
    assert metrics.psnr(a, b, test_y_channel=False) == math.inf
    assert metrics.psnr(np.full((4, 4, 3), 1.7), np.full((4, 4, 3), 1.0)) == math.inf, "clamped to [0, 1]"


def test_crop_border_is_applied_before_scoring():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[0] = 255  # only the border row differs
    assert metrics.psnr(a, b, crop_border=1) == math.inf
    assert metrics.psnr(a, b, crop_border=0) < 20


def test_identity_and_symmetry():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    assert metrics.psnr(a, a) == math.inf
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    assert metrics.psnr(a, b) == metrics.psnr(b, a)
    assert metrics.ssim(a, b) == pytest.approx(metrics.ssim(b, a), abs=1e-12)


def test_ssim_of_constant_images_hand_value():
    a = np.full((16, 16, 1), 100, np.uint8)
    b = np.full((16, 16, 1), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)  # variances and covariance are zero
    assert metrics.ssim(a, b, test_y_channel=False) == pytest.approx(expected, abs=1e-9)


def test_ssim_uses_the_valid_region_of_an_11x11_gaussian():
    assert metrics.gaussian_window().sum() == pytest.approx(1.0)
    image = np.arange(15 * 13, dtype=np.float64).reshape(15, 13)
    assert metrics.filter_valid(image, metrics.gaussian_window()).shape == (5, 3)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((12, 12, 3), np.uint8), np.zeros((12, 12, 3), np.uint8), crop_border=1)
