"""The models that ship in the package: found by name, fused, and better than bicubic on a real photo."""

import numpy as np
import pytest

import freqnet
from freqnet import metrics
from freqnet.data import Degrader, modcrop, read_rgb
from freqnet.data.image_io import resolve_path
from freqnet.evaluation import bicubic_up
from freqnet.inference import Upscaler
from freqnet.models import shipped_models


@pytest.mark.parametrize("name, scale", [("x2", 2), ("x4", 4), ("default", 4)])
def test_shipped_model_loads_by_name_and_beats_bicubic(name, scale):
    assert name in shipped_models()
    model = freqnet.load_model(name)
    assert model.config.scale == scale and getattr(model, "is_fused", False)
    hr = modcrop(read_rgb(resolve_path("builtin:samples") / "chelsea.png"), scale)
    lr, _ = Degrader("bicubic", scale)(hr, np.random.default_rng(0))
    out = Upscaler(name, tile=None).run(lr)
    assert out.shape == hr.shape
    assert metrics.psnr(out, hr, scale) > metrics.psnr(bicubic_up(lr, scale), hr, scale) + 0.3

