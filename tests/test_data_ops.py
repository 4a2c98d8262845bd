"""Degradation operators, kernels and the MATLAB bicubic, against values worked out by hand."""

import math

import numpy as np
import pytest

from freqnet.data import degradations as ops
from freqnet.data.kernels import (
    KERNEL_TYPES, bessel_j1, gaussian_kernel, motion_kernel, random_mixed_kernel, sinc_kernel)
from freqnet.data.resize import imresize, resize_matrix


def test_matlab_bicubic_hand_computed_1d_downscale():
    # x0.5: kernel 0.5*cubic(0.5 d) at distances 0.25, 0.75, 1.25, 1.75 from the output centre at 1.5,
    # mirrored at the border: out[0] = .546875 a + .3984375 b + .1015625 c - .046875 d
    np.testing.assert_allclose(resize_matrix(4, 2, 0.5)[0], [0.546875, 0.3984375, 0.1015625, -0.046875])
    np.testing.assert_allclose(resize_matrix(4, 2, 0.5)[1], [-0.046875, 0.1015625, 0.3984375, 0.546875])


def test_matlab_bicubic_upscale_weights_are_the_cubic_at_quarter_offsets():
    # x2 up, output 6 (1-based) sits at input 3.25: taps 2..5 at distances 1.25, .25, .75, 1.75
    row = resize_matrix(8, 16, 2.0)[5]
    np.testing.assert_allclose(row, [0, -0.0703125, 0.8671875, 0.2265625, -0.0234375, 0, 0, 0])
    # output 3 sits at 1.75: the tap at input 0 mirrors onto input 1, so their weights add up
    row = resize_matrix(8, 16, 2.0)[2]
    np.testing.assert_allclose(row, [-0.0234375 + 0.2265625, 0.8671875, -0.0703125, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2.0, 3.0])
def test_matlab_bicubic_keeps_constants_and_sizes(scale):
    image = np.full((17, 23, 3), 0.3, dtype=np.float32)
    out = imresize(image, scale)
    assert out.shape == (math.ceil(17 * scale), math.ceil(23 * scale), 3)
    np.testing.assert_allclose(out, 0.3, atol=1e-6)


def test_matlab_bicubic_identity_at_scale_one():
    image = np.random.default_rng(0).random((9, 7)).astype(np.float32)
    np.testing.assert_allclose(imresize(image, 1.0), image, atol=1e-6)


def test_bessel_j1_known_values():
    np.testing.assert_allclose(bessel_j1(np.array([0.0, 1.0, 5.0, 10.0, -2.0])),
                               [0.0, 0.44005058574, -0.32757913759, 0.04347274617, -0.57672480776], atol=1e-7)


@pytest.mark.parametrize("size", [7, 13, 21])
def test_every_kernel_is_normalised_and_odd(size):
    rng = np.random.default_rng(size)
    kernels = [random_mixed_kernel(rng, size, kind, (0.2, 3.0), (0.5, 4.0), (1.0, 2.0))[0] for kind in KERNEL_TYPES]
    kernels += [sinc_kernel(size, math.pi / 3), motion_kernel(size, size / 2, 0.7), gaussian_kernel(size, 1.5)]
    for kernel in kernels:
        assert kernel.shape == (size, size)
        assert kernel.sum() == pytest.approx(1.0, abs=1e-9)


def test_gaussian_kernel_is_symmetric_and_peaked():
    k = gaussian_kernel(9, 1.0)
    np.testing.assert_allclose(k, k.T)
    assert k[4, 4] == k.max()
    assert k[4, 5] / k[4, 4] == pytest.approx(math.exp(-0.5))


def test_blur_with_delta_kernel_is_identity_and_keeps_size():
    image = np.random.default_rng(0).random((10, 12, 3)).astype(np.float32)
    delta = np.zeros((7, 7))
    delta[3, 3] = 1
    np.testing.assert_allclose(ops.blur(image, delta), image, atol=1e-6)


@pytest.mark.parametrize("sigma", [15, 25, 50])
@pytest.mark.parametrize("grey", [False, True])
def test_gaussian_noise_sigma_on_a_flat_image(sigma, grey):
    flat = np.full((256, 256, 3), 0.5, dtype=np.float32)
    noisy = ops.gaussian_noise(flat, sigma, grey, np.random.default_rng(0))
    measured = (noisy - flat).std() * 255
    assert measured == pytest.approx(sigma, rel=0.05)
    if grey:
        assert np.array_equal(noisy[..., 0], noisy[..., 2])


def test_poisson_noise_is_signal_dependent():
    rng = np.random.default_rng(0)
    image = np.concatenate([np.full((64, 64, 3), 0.1), np.full((64, 64, 3), 0.9)], axis=1).astype(np.float32)
    noise = ops.poisson_noise(image, 1.0, False, rng) - image
    assert noise[:, 64:].std() > 1.5 * noise[:, :64].std()


def test_jpeg_changes_the_image_and_keeps_its_size():
    image = np.random.default_rng(0).random((33, 47, 3)).astype(np.float32)
    out = ops.jpeg(image, 30)
    assert out.shape == image.shape
    assert np.abs(out - image).mean() > 0.02
    assert np.abs(ops.jpeg(image, 95) - image).mean() < np.abs(out - image).mean()
