"""`freqnet export`: the fused model as ONNX or TorchScript, checked against PyTorch on a random input.

Before tracing, the FFT splitter switches to its spatial kernel (`torch.fft` has no ONNX export), the large
kernels from FFT to plain convs, and window attention to its export path (masks for every window from tensor ops,
pruning by zeroing), so every config exports, with dynamic batch, height and width when asked.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch

from .models import fuse, is_fused


def export_ready(model: torch.nn.Module, half: bool = False) -> torch.nn.Module:
    model = copy.deepcopy(model if is_fused(model) else fuse(model)).eval()
    for module in model.modules():
        if hasattr(module, "spatial_taps"):
            module.spatial = True  # the splitter's separable kernel: ONNX has no FFT operator
        if hasattr(module, "export_mode"):
            module.export_mode = True
        if hasattr(module, "fft_conv"):
            module.fft_conv = False  # a plain conv: ONNX has no FFT operator
            if module.polyphase is None:  # ORT's 17x17 conv is slow; the model pads its input, so sides are even
                module.polyphase = True
    model = model.to(memory_format=torch.contiguous_format)
    return model.half() if half else model


def export_onnx(model: torch.nn.Module, path: str | Path, opset: int = 17, dynamic: bool = False,
                half: bool = False, size: int = 64) -> float:
    """Write ONNX; returns the max |ONNX - PyTorch| on a random input (onnxruntime, CPU)."""
    ready = export_ready(model, half)
    dtype = torch.float16 if half else torch.float32
    example = torch.rand(1, ready.config.in_channels, size, size, dtype=dtype)
    axes = {"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "out_height", 3: "out_width"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about python ints: the export path avoids them
        torch.onnx.export(ready, (example,), str(path), dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes=axes if dynamic else None)
    return check_onnx(ready, path, size, dynamic, dtype)


def check_onnx(model: torch.nn.Module, path: str | Path, size: int, dynamic: bool, dtype: torch.dtype) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    torch.manual_seed(0)
    shape = (1, model.config.in_channels, size - 7, size + 5) if dynamic else (1, model.config.in_channels, size, size)
    x = torch.rand(*shape, dtype=dtype)
    with torch.no_grad():
        reference = model(x).float().numpy()
    result = session.run(None, {"input": x.numpy()})[0].astype(np.float32)
    return float(np.abs(result - reference).max())


def export_torchscript(model: torch.nn.Module, path: str | Path, half: bool = False, size: int = 64) -> float:
    """Write a traced TorchScript module; returns the max |TorchScript - PyTorch| on another input size."""
    ready = export_ready(model, half)
    dtype = torch.float16 if half else torch.float32
    example = torch.rand(1, ready.config.in_channels, size, size, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(ready, (example,), check_trace=False)
    traced.save(str(path))
    x = torch.rand(1, ready.config.in_channels, size - 7, size + 5, dtype=dtype)
    with torch.no_grad():
        return float((torch.jit.load(str(path))(x).float() - ready(x).float()).abs().max())
