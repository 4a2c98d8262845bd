import pytest

import freqnet
from freqnet.config import PRESETS, ModelConfig
from freqnet.info import count_parameters


@pytest.mark.parametrize("field, value, allowed", [
    ("scale", 5, "one of (1, 2, 3, 4)"),
    ("splitter", "wavelet", "'fft', 'laplacian'"),
    ("upsampler", "nearest", "'pixelshuffle', 'dysample'"),
    ("top_k", 3, "1 or 2"),
    ("window_size", 7, "even"),
    ("plk_kernel", 12, "odd"),
    ("drop_path", 1.0, "[0, 1)"),
    ("enc_blocks", (1,), "2 positive integers"),
])
def test_bad_value_names_field_and_allowed(field, value, allowed):
    with pytest.raises(ValueError) as error:
        ModelConfig(**{field: value})
    assert f"ModelConfig.{field}=" in str(error.value)
    assert allowed in str(error.value)


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match="unknown ModelConfig field 'windowsize'; did you mean 'window_size'"):
        ModelConfig.from_dict({"windowsize": 8})


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        freqnet.build_model("huge")


def test_json_round_trip():
    config = freqnet.preset_config("small", 3, use_moe=False, splitter="laplacian")
    assert ModelConfig.from_dict(__import__("json").loads(config.to_json())) == config


@pytest.mark.parametrize("preset, low, high", [
    ("tiny", 0.2e6, 0.3e6), ("small", 0.18e6, 0.25e6), ("base", 0.55e6, 0.75e6), ("large", 6.0e6, 8.0e6),
])
def test_preset_sizes_stay_where_they_were_chosen(preset, low, high):
    """Deployed (fused) parameter counts stay where each preset was chosen (docs/benchmarks.md, preset_latency.md)."""
    fused = freqnet.fuse(freqnet.build_model(preset, scale=4))
    assert low <= count_parameters(fused) <= high
    assert set(PRESETS) == {"tiny", "small", "base", "large"}
