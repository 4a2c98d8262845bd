"""The models that ship in the package: found by name, fused, better than bicubic (the x1 `restore`: than its
degraded input) on a real photo, and scoring on Set5 what their card in docs/models.md says."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import freqnet
from freqnet import metrics
from freqnet.cli import main
from freqnet.data import Degrader, modcrop, read_rgb
from freqnet.data.image_io import resolve_path
from freqnet.evaluation import bicubic_up, evaluate, lanczos_up, means, standard_datasets
from freqnet.inference import Upscaler
from freqnet.models import shipped_models, transfer_weights


@pytest.mark.parametrize("name, scale", [("x2", 2), ("x3", 3), ("x4", 4), ("real-x2", 2), ("real-x4", 4), ("default", 4)])
def test_shipped_model_loads_by_name_and_beats_bicubic(name, scale):
    assert name in shipped_models()
    model = freqnet.load_model(name)
    assert model.config.scale == scale and getattr(model, "is_fused", False)
    hr = modcrop(read_rgb(resolve_path("builtin:samples") / "chelsea.png"), scale)
    lr, _ = Degrader("bicubic", scale)(hr, np.random.default_rng(0))
    out = Upscaler(name, tile=None).run(lr)
    assert out.shape == hr.shape
    assert metrics.psnr(out, hr, scale) > metrics.psnr(bicubic_up(lr, scale), hr, scale) + 0.3


def test_a_shipped_model_seeds_training_with_its_exact_function():
    shipped = freqnet.load_model("x4")
    trainable = freqnet.HybridMoEFreqNet(shipped.config)
    assert transfer_weights(trainable, "x4") == []
    lr = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(trainable.eval()(lr), shipped(lr), atol=1e-5)


def test_self_ensemble_of_a_shipped_model_scores_higher():
    gains = []  # one photo's gain is noisy (chelsea: +0.06 dB with one x2, +0.02 with the next), so the mean of five
    for path in sorted(resolve_path("builtin:samples").glob("*.png")):
        hr = modcrop(read_rgb(path), 2)
        lr, _ = Degrader("bicubic", 2)(hr, np.random.default_rng(0))
        plain, ensemble = (metrics.psnr(Upscaler("x2", tile=None, ensemble=e).run(lr), hr, 2) for e in (False, True))
        gains.append(ensemble - plain)
    assert len(gains) == 5 and np.mean(gains) > 0.05  # measured +0.10 dB (+0.02 to +0.17 per photo)


def test_the_default_model_is_the_real_photo_model():
    assert shipped_models()["default"] == shipped_models()["real-x4"]


# Measured on this photo (dB over Lanczos): real-x4 +0.79 (JPEG), +0.98 (noise); real-x2 +0.81, +1.65.
REAL_GAIN = {("real-x4", "real_jpeg"): 0.3, ("real-x4", "real_noise"): 0.6,
             ("real-x2", "real_jpeg"): 0.3, ("real-x2", "real_noise"): 1.0}


@pytest.mark.parametrize("name, recipe", sorted(REAL_GAIN))
def test_real_photo_model_beats_lanczos_and_the_classical_model_on_degraded_photos(name, recipe):
    photo_model = Upscaler(name, tile=None)
    scale = photo_model.scale
    hr = modcrop(read_rgb(resolve_path("builtin:samples") / "coffee.png"), scale)
    lr, _ = Degrader(recipe, scale)(hr, np.random.default_rng(0))
    real, classical = (metrics.psnr(upscaler.run(lr), hr, scale)
                       for upscaler in (photo_model, Upscaler(f"x{scale}", tile=None)))
    lanczos = metrics.psnr(lanczos_up(lr, scale), hr, scale)
    assert real > lanczos + REAL_GAIN[name, recipe] and real > classical


@pytest.mark.parametrize("recipe, gain", [("denoise_sigma25", 5.0), ("deblur_iso", 0.3)])
def test_shipped_restore_model_cleans_noise_and_blur(recipe, gain):
    model = freqnet.load_model("restore")
    assert model.config.scale == 1 and getattr(model, "is_fused", False)
    hr = read_rgb(resolve_path("builtin:samples") / "chelsea.png")
    degraded, _ = Degrader(recipe, 1)(hr, np.random.default_rng(0))
    out = Upscaler(model, tile=None).run(degraded)
    assert out.shape == hr.shape
    assert metrics.psnr(out, hr, 1) > metrics.psnr(degraded, hr, 1) + gain


def test_upscale_command_with_the_restore_model_keeps_the_size(tmp_path, capsys):
    source = resolve_path("builtin:samples") / "coffee.png"
    assert main(["upscale", str(source), "-o", str(tmp_path / "out.png"), "--model", "restore", "--tile", "0"]) == 0
    assert "1 restored, 0 skipped, 0 failed" in capsys.readouterr().out
    assert read_rgb(tmp_path / "out.png").shape == read_rgb(source).shape


SHARED_SETS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
CARDS = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def card_set5_psnr(name: str) -> float | None:
    """Set5 PSNR in the model card's standard-benchmark block (docs/models.md), or None if the card has none."""
    block = re.search(rf"<!-- bench:{name} -->(.*?)<!-- /bench:{name} -->", CARDS.read_text(), re.S)
    if not block:
        return None
    lines = [line for line in block.group(1).splitlines() if line.startswith("|")]
    column = [cell.strip() for cell in lines[0].split("|")].index("Set5 (5)")
    row = next(line for line in lines if line.startswith(f"| **`{name}`** |"))
    return float(row.split("|")[column].split("/")[0])


@pytest.mark.skipif(not (SHARED_SETS / "Set5" / "HR").is_dir(), reason=f"{SHARED_SETS} is not beside this clone")
@pytest.mark.parametrize("name", sorted(n for n in shipped_models() if n != "default" and not n.startswith("restore")))
def test_shipped_model_scores_its_card_on_set5(name):
    expected = card_set5_psnr(name)
    assert expected is not None, f"docs/models.md has no standard-benchmark block for {name}"
    scale = freqnet.load_model(name).config.scale
    rows = evaluate(Upscaler(name, tile=None), standard_datasets(SHARED_SETS, ["Set5"], scale), scale, baselines=())
    assert means(rows, lambda r: ())[()]["model"]["psnr"] == pytest.approx(expected, abs=0.05)
