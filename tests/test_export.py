"""Every config exports to ONNX (dynamic sizes) and TorchScript and matches PyTorch."""

import pytest
import torch

import freqnet
from freqnet.archs.moe import SelectiveMoEFFN
from freqnet.archs.window_attention import WindowAttention, window_labels, window_labels_traceable
from freqnet.cli import main
from freqnet.export import export_onnx, export_torchscript

pytest.importorskip("onnxruntime")

CONFIGS = {
    "full": {}, "no_moe": {"use_moe": False}, "no_hf_path": {"use_hf_path": False},
    "no_attention": {"use_attention": False}, "laplacian": {"splitter": "laplacian"},
    "dysample": {"upsampler": "dysample"}, "pruning": {"prune_threshold": 0.05}, "top2": {"top_k": 2},
    # an odd kernel radius: the polyphase kernel's ceil division once exported as truncation (a 5x5 for a 7x7)
    "kernel_11": {"plk_kernel": 11},
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


def test_onnx_graph_routes_the_moe_with_an_idle_expert(tmp_path):
    """The exported MoE routes tokens (NonZero + Gather: dynamic shapes, a quarter of the dense FLOPs at 4
    experts) and still matches PyTorch when an expert receives no token at all (an empty matrix product):
    positive tokens and a router row of -100 leave expert 3 idle."""
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort

    torch.manual_seed(0)
    moe = SelectiveMoEFFN(8, 2.0, 4, 1, 1.25, 0.01, 0.0, 0.0).eval()
    with torch.no_grad():
        moe.context.weight.abs_()
        moe.context.bias.abs_()
        moe.router.weight[3] = -100.0
    x = torch.rand(1, 8, 9, 11)
    path = tmp_path / "moe.onnx"
    torch.onnx.export(moe, (torch.rand(1, 8, 5, 6),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {2: "h", 3: "w"}})
    with torch.no_grad():
        expected = moe(x)
    assert moe.load[3] == 0 and (moe.load > 0).sum() >= 2  # idle and busy experts in one graph
    result = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(result), expected, rtol=1e-5, atol=1e-5)
    assert [node.op_type for node in onnx.load(str(path)).graph.node].count("NonZero") == 4
