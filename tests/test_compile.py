"""A forward torch.compile captures whole: no graph breaks (train and eval, every preset and ablation switch), no
host synchronisation in a training step, and compiled == eager."""

import pytest
import torch

import freqnet
from freqnet.archs.window_attention import MASKED, attention_core

SWITCHES = {"full": {}, "no_moe": {"use_moe": False}, "no_hf_path": {"use_hf_path": False},
            "no_attention": {"use_attention": False}, "laplacian": {"splitter": "laplacian"},
            "dysample": {"upsampler": "dysample"}, "pruning": {"prune_threshold": 0.05}, "top2": {"top_k": 2}}
# `small` and `large` are `tiny` with more blocks of the same kinds (two levels); `base` is the one-level layout.
# Tracing the bigger ones adds time, not coverage.
CASES = [("tiny", name) for name in SWITCHES] + [("base", "full")]


@pytest.mark.parametrize("preset, switch", CASES)
def test_no_graph_breaks(preset, switch):
    for mode in ("train", "eval"):
        model = freqnet.build_model(preset, 4, **SWITCHES[switch]).train(mode == "train")
        torch._dynamo.reset()
        explained = torch._dynamo.explain(model)(torch.rand(2, 3, 20, 28))
        reasons = [str(b.reason).splitlines()[0] for b in explained.break_reasons]
        assert explained.graph_break_count == 0, f"{preset}/{switch}/{mode}: {reasons[:3]}"
    torch._dynamo.reset()


def test_training_step_never_waits_on_the_host():
    """`nonzero`, `item` and friends block the CPU until the GPU catches up; a training step has none."""
    model = freqnet.build_model("base", 4, top_k=2, prune_threshold=0.0).train()
    x = torch.rand(2, 3, 24, 24)
    model(x)  # the first forward of a shape plans the attention masks on the CPU, once
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        (model(x).mean() + model.aux_loss()).backward()
    names = {event.name for event in profile.events()}
    synchronising = {"aten::nonzero", "aten::item", "aten::_local_scalar_dense", "aten::masked_select", "aten::unique"}
    assert not names & synchronising, sorted(names & synchronising)


def test_compiled_equals_eager():
    """In training mode: drop-path, router noise and the capacity buffers all go through the compiled graph, and
    so does the backward (the attention core is a custom op there, with its own gradient formula)."""
    torch.manual_seed(0)
    model = freqnet.build_model("tiny", 2).train()
    x = torch.rand(2, 3, 20, 28)
    torch.manual_seed(1)
    eager = model(x)
    eager_grads = torch.autograd.grad(eager.square().mean(), list(model.parameters()), allow_unused=True)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.manual_seed(1)  # the same drop-path and router-noise draws
    out = compiled(x)
    torch.testing.assert_close(out, eager, rtol=1e-5, atol=1e-5)
    grads = torch.autograd.grad(out.square().mean(), list(model.parameters()), allow_unused=True)
    assert sum(g is not None for g in grads) > 100
    for (name, _), grad, expected in zip(model.named_parameters(), grads, eager_grads):
        assert (grad is None) == (expected is None), name
        if grad is not None:
            torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6, msg=name)
    torch._dynamo.reset()


def test_compiled_attention_core_gradients():
    """The op `torch.compile` runs on CPU for window attention: its outputs and hand-written gradients (q, k, v,
    position bias; padded keys masked) equal autograd through the plain formula."""
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 16, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    bias = torch.randn(2, 16, 16, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(3, 1, 16, 16, dtype=torch.float64)
    mask[1, :, :, 12:] = MASKED
    weights = torch.randn(3, 2, 16, 8, dtype=torch.float64)
    out, probs = attention_core(q, k, v, bias, mask, 0.35)
    expected = ((q * 0.35) @ k.transpose(-2, -1) + bias + mask).softmax(-1)
    torch.testing.assert_close(probs, expected)
    assert probs[1, :, :, 12:].max() < 1e-40
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v, bias))
    expected_grads = torch.autograd.grad((expected @ v * weights).sum(), (q, k, v, bias))
    for grad, reference in zip(grads, expected_grads):
        torch.testing.assert_close(grad, reference)
    torch.library.opcheck(attention_core, (q, k, v, bias, mask, 0.35))


def test_fused_attention_path_equals_explicit_matmuls():
    model = freqnet.build_model("tiny", 2).eval()
    x = torch.rand(1, 3, 21, 27)
    with torch.no_grad():
        explicit = model(x)
        for module in model.modules():
            if hasattr(module, "fused_attention"):
                module.fused_attention = True
        fused = model(x)
    torch.testing.assert_close(fused, explicit, rtol=1e-5, atol=1e-5)
