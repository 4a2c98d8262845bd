import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import freqnet
from freqnet import CheckpointError


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return freqnet.build_model("tiny", 2, splitter="laplacian", upsampler="dysample").eval()


@pytest.mark.parametrize("fused", [False, True])
def test_save_load_is_bit_identical(model, tmp_path, fused):
    source = freqnet.fuse(model) if fused else model
    path = tmp_path / "m.safetensors"
    freqnet.save_model(source, path)
    loaded = freqnet.load_model(path)
    x = torch.rand(1, 3, 19, 23)
    with torch.no_grad():
        assert torch.equal(source(x), loaded(x))
    assert loaded.config == model.config
    assert getattr(loaded, "is_fused", False) == fused


def test_metadata_describes_the_model(model, tmp_path):
    path = tmp_path / "m.safetensors"
    freqnet.save_model(model, path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["architecture"] == "HybridMoE-FreqNet"
    assert meta["freqnet_version"] == freqnet.__version__
    assert json.loads(meta["config"])["upsampler"] == "dysample"


def tamper(path, out, edit_state=None, edit_meta=None):
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
        state = {k: f.get_tensor(k) for k in f.keys()}
    if edit_state:
        edit_state(state)
    if edit_meta:
        edit_meta(meta)
    save_file(state, str(out), metadata=meta)


def test_errors_name_the_problem(model, tmp_path):
    good = tmp_path / "good.safetensors"
    freqnet.save_model(model, good)

    missing = tmp_path / "missing.safetensors"
    tamper(good, missing, edit_state=lambda s: s.pop("stem.conv.weight"))
    with pytest.raises(CheckpointError, match=r"missing keys \['stem.conv.weight'\]"):
        freqnet.load_model(missing)

    extra = tmp_path / "extra.safetensors"
    tamper(good, extra, edit_state=lambda s: s.__setitem__("bogus.weight", torch.zeros(1)))
    with pytest.raises(CheckpointError, match=r"unexpected keys \['bogus.weight'\]"):
        freqnet.load_model(extra)

    shape = tmp_path / "shape.safetensors"
    tamper(good, shape, edit_state=lambda s: s.__setitem__("stem.conv.bias", torch.zeros(5)))
    with pytest.raises(CheckpointError, match=r"stem.conv.bias has shape \(5,\), the config needs \(16,\)"):
        freqnet.load_model(shape)

    foreign = tmp_path / "foreign.safetensors"
    tamper(good, foreign, edit_meta=lambda m: m.__setitem__("architecture", "SwinIR"))
    with pytest.raises(CheckpointError, match="architecture is 'SwinIR'"):
        freqnet.load_model(foreign)

    bad_config = tmp_path / "bad_config.safetensors"
    tamper(good, bad_config, edit_meta=lambda m: m.__setitem__("config", json.dumps({"scale": 9})))
    with pytest.raises(CheckpointError, match="scale=9"):
        freqnet.load_model(bad_config)


def test_non_safetensors_files_are_refused(tmp_path):
    pickle_like = tmp_path / "model.pth"
    torch.save({"a": torch.zeros(1)}, pickle_like)
    with pytest.raises(CheckpointError, match="not a readable .safetensors file"):
        freqnet.load_model(pickle_like)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(b"\x10\x00\x00")
    with pytest.raises(CheckpointError, match="not a readable"):
        freqnet.load_model(truncated)


def test_a_file_whose_header_was_dropped_loads_from_its_description_tensor(model, tmp_path):
    """Tensors-only tools (ComfyUI, spandrel) drop the header when they re-save; the description tensor remains."""
    path, stripped = tmp_path / "m.safetensors", tmp_path / "stripped.safetensors"
    freqnet.save_model(freqnet.fuse(model), path)
    with safe_open(str(path), framework="pt") as f:
        save_file({k: f.get_tensor(k) for k in f.keys()}, str(stripped))
    loaded = freqnet.load_model(stripped)
    assert loaded.config == model.config and getattr(loaded, "is_fused", False)
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.equal(loaded(x), freqnet.load_model(path)(x))
