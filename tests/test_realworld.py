"""The real-photo pieces: seeded evaluation recipes, the detail (HF gain) control, and starting a run from weights."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import freqnet
from freqnet.archs.reparam import Conv3XC, PartialLargeKernelConv
from freqnet.cli import main
from freqnet.data.image_io import read_image
from freqnet.data.recipes import NAMED_RECIPES, Degrader
from freqnet.models import transfer_weights
from freqnet.inference import Upscaler

SAMPLE = "freqnet/assets/samples/chelsea.png"
EVALUATION_RECIPES = ("real_jpeg", "real_noise", "real_blur", "real_mixed")


def photo_crop(size: int = 96) -> np.ndarray:
    return read_image(SAMPLE).pixels[20:20 + size, 60:60 + size]


@pytest.mark.parametrize("name", EVALUATION_RECIPES)
def test_evaluation_recipes_are_seeded(name):
    degrader, hr = Degrader(name, 4), photo_crop()
    first, info = degrader(hr, np.random.default_rng(7))
    again, _ = degrader(hr, np.random.default_rng(7))
    other, _ = degrader(hr, np.random.default_rng(8))
    assert first.shape == (24, 24, 3) and info["recipe"] == name
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_real_jpeg_and_real_noise_draw_the_documented_ranges():
    hr = np.full((64, 64, 3), 0.5, np.float32)  # flat grey: whatever varies in the LR is the degradation
    qualities, sigmas = [], []
    for seed in range(40):
        _, info = Degrader("real_jpeg", 2)(photo_crop(64), np.random.default_rng(seed))
        qualities.append(info["steps"][-1]["quality"])
        lr, info = Degrader("real_noise", 2)(hr, np.random.default_rng(seed))
        if info["steps"][-1]["noise"] == "gaussian":
            sigmas.append((lr.std() * 255, info["steps"][-1]["sigma"]))
    assert 30 <= min(qualities) and max(qualities) <= 70 and len(set(qualities)) > 10
    assert 5 < len(sigmas) < 35  # about half of the draws are Gaussian, the rest shot noise
    for measured, drawn in sigmas:
        assert 5 <= drawn <= 15 and abs(measured - drawn) < 0.15 * drawn + 0.5  # 8-bit rounding adds ~0.3


def test_training_mixture_covers_clean_and_degraded_inputs():
    degrader, hr = Degrader("real", 4), photo_crop(64)
    drawn = {degrader(hr, np.random.default_rng(seed))[1]["recipe"] for seed in range(60)}
    assert drawn == set(NAMED_RECIPES["real"]["mixture"])


def high_frequency_energy(image: torch.Tensor) -> float:
    blurred = F.avg_pool2d(F.pad(image, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    return float((image - blurred).square().mean())


@pytest.fixture(scope="module")
def shipped_x4():
    return freqnet.load_model("x4")


def test_detail_scales_high_frequencies_and_one_is_the_trained_model(shipped_x4):
    x = torch.from_numpy(photo_crop(48)).permute(2, 0, 1)[None]
    with torch.no_grad():
        trained = shipped_x4(x)
        energies = {}
        for gain in (0.0, 0.5, 1.0, 1.5):
            shipped_x4.set_detail(gain)
            out = shipped_x4(x)
            energies[gain] = high_frequency_energy(out.clamp(0, 1))
            if gain == 1.0:
                assert torch.equal(out, trained)  # bit for bit
        shipped_x4.set_detail(1.0)
    assert energies[0.0] < 0.75 * energies[1.0] and energies[1.5] > 1.3 * energies[1.0]
    assert energies[0.0] < energies[0.5] < energies[1.0]


def test_detail_survives_fusion_copies_and_onnx_export(tmp_path):
    pytest.importorskip("onnxruntime")
    from freqnet.export import export_onnx

    model = freqnet.build_model("tiny", 2)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    model.eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        plain = model(x)
        model.set_detail(0.5)
        reference = model(x)
        fused = freqnet.fuse(model)
        assert fused.detail == 0.5
        torch.testing.assert_close(fused(x), reference, rtol=1e-4, atol=1e-5)
    assert (reference - plain).abs().max() > 1e-3
    assert export_onnx(fused, tmp_path / "m.onnx", size=32) < 1e-3  # the exported graph computes the 0.5 output


def test_upscaler_detail_leaves_the_callers_model_alone(shipped_x4):
    shipped_x4.set_detail(1.0)
    pixels = photo_crop(32)
    smooth = Upscaler(shipped_x4, tile=None, detail=0.0).run(pixels)
    assert shipped_x4.detail == 1.0
    plain = Upscaler(shipped_x4, tile=None).run(pixels)
    assert np.abs(smooth - plain).mean() > 1e-3


@pytest.mark.parametrize("bad", ["-0.1", "2.5"])
def test_detail_out_of_range_is_a_one_line_error(bad, tmp_path, capsys):
    assert main(["upscale", SAMPLE, "-o", str(tmp_path / "out.png"), "--model", "x4", "--detail", bad]) == 2
    assert "detail" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_lf_only_model_refuses_a_detail_gain():
    with pytest.raises(ValueError, match="no HF path"):
        freqnet.build_model("tiny", 2, use_hf_path=False).set_detail(0.5)


def test_transfer_weights_keeps_only_the_other_scales_upsampler_fresh(tmp_path):
    source = freqnet.build_model("tiny", 4)
    freqnet.save_model(source, tmp_path / "x4.safetensors")
    target = freqnet.build_model("tiny", 3)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    fresh = transfer_weights(target, tmp_path / "x4.safetensors")
    assert fresh and all(name.startswith("reconstruct.") for name in fresh)
    for name, tensor in target.state_dict().items():
        expected = before[name] if name in fresh else source.state_dict()[name]
        assert torch.equal(tensor, expected), name


def test_transfer_weights_fine_tunes_a_fused_model_from_its_exact_function(tmp_path):
    """A shipped (fused) file seeds training: the rebuilt branches merge into the fused convs, so the training-form
    model computes the same image, and every branch gets a gradient (none is a dead zero-product)."""
    torch.manual_seed(0)
    source = freqnet.build_model("tiny", 4)
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.02 * torch.randn_like(p))
    fused = freqnet.fuse(source)
    freqnet.save_model(fused, tmp_path / "fused.safetensors")
    target = freqnet.build_model("tiny", 4)
    assert transfer_weights(target, tmp_path / "fused.safetensors") == []
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        expected = fused(x)
    target.eval()
    out = target(x)
    assert torch.allclose(out, expected, atol=2e-5, rtol=1e-4), float((out - expected).abs().max())
    out.square().mean().backward()
    branches = [(name, p) for module in target.modules() if isinstance(module, (Conv3XC, PartialLargeKernelConv))
                for name, p in module.named_parameters()]
    assert len(branches) > 20 and all(p.grad.abs().sum() > 0 for name, p in branches)
