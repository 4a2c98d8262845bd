"""Every config exports to ONNX (dynamic sizes) and TorchScript and matches PyTorch."""

import pytest
import torch

import freqnet
from freqnet.archs.window_attention import WindowAttention, window_labels, window_labels_traceable
from freqnet.cli import main
from freqnet.export import export_onnx, export_torchscript

pytest.importorskip("onnxruntime")

CONFIGS = {
    "full": {}, "no_moe": {"use_moe": False}, "no_hf_path": {"use_hf_path": False},
    "no_attention": {"use_attention": False}, "laplacian": {"splitter": "laplacian"},
    "dysample": {"upsampler": "dysample"}, "pruning": {"prune_threshold": 0.05}, "top2": {"top_k": 2},
}


def perturbed(**overrides):
    torch.manual_seed(0)
    model = freqnet.build_model("tiny", 2, **overrides)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return freqnet.fuse(model)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_onnx_export_matches_pytorch_at_another_size(name, tmp_path):
    difference = export_onnx(perturbed(**CONFIGS[name]), tmp_path / "m.onnx", dynamic=True, size=48)
    print(f"{name}: max |onnxruntime - PyTorch| = {difference:.2e}")
    assert difference < 1e-3


def test_torchscript_export(tmp_path):
    assert export_torchscript(perturbed(), tmp_path / "m.pt", size=48) < 1e-5


@pytest.mark.parametrize("h, w, shift", [(8, 8, 0), (13, 21, 2), (5, 9, 2), (16, 12, 2)])
def test_traceable_labels_equal_cached_ones(h, w, shift):
    assert torch.equal(window_labels_traceable(h, w, 4, shift), window_labels(h, w, 4, shift))


@pytest.mark.parametrize("shift, threshold", [(False, 0.0), (True, 0.0), (True, 0.3)])
def test_export_path_of_attention_equals_the_fast_path(shift, threshold):
    attention = WindowAttention(8, 2, 4, shift, threshold).eval()
    x = torch.randn(2, 8, 11, 14)
    x[:, :, :4, :4] = 0.1  # a flat window for the pruning case
    with torch.no_grad():
        fast = attention(x)
        attention.export_mode = True
        exported = attention(x)
    torch.testing.assert_close(exported, fast, rtol=1e-5, atol=1e-6)


def test_export_command(tmp_path, capsys):
    path = tmp_path / "m.safetensors"
    freqnet.save_model(perturbed(), path)
    assert main(["export", str(path), "-o", str(tmp_path / "m.onnx"), "--dynamic"]) == 0
    assert "max |onnxruntime - PyTorch|" in capsys.readouterr().out
    assert main(["export", str(path), "--format", "torchscript", "-o", str(tmp_path / "m.pt")]) == 0
