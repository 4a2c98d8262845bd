"""HybridMoE-FreqNet: the draft's block diagram, top to bottom.

    stem -> frequency split -> dual-path MSG encoder (LF: conv+window attention, HF: PLK+gated conv,
    cross-frequency fusion at every scale) -> bottleneck (window attention + selective MoE FFN)
    -> decoder with both paths' skips -> texture refinement -> reconstruction + upsampled input
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .frequency import build_splitter
from .fusion import CrossFrequencyFusion
from .heads import BicubicUpsample, TextureRefinementHead, build_reconstruction_head
from .hf_block import HFBlock
from .layers import GDFN
from .lf_block import LFBlock, TransformerBlock, build_token_mixer
from .moe import SelectiveMoEFFN
from .sampling import Downsample, Upsample
from .stem import ShallowStem

ARCHITECTURE = "HybridMoE-FreqNet"


class HybridMoEFreqNet(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = c = config
        dims = c.dims
        attention_blocks = sum(c.enc_blocks) + c.bottleneck_blocks
        drop_rates = iter(torch.linspace(0, c.drop_path, attention_blocks).tolist())
        shifts = iter(i % 2 == 1 for i in range(attention_blocks))  # alternate plain/shifted windows

        def heads(channels: int) -> int:
            return channels // c.head_dim

        def hf_blocks(channels: int, count: int) -> nn.Sequential:
            return nn.Sequential(*(HFBlock(channels, c.plk_kernel, c.plk_ratio, c.ffn_expansion, c.window_size)
                                   for _ in range(count)))

        self.stem = ShallowStem(c.in_channels, dims[0])
        self.splitter = build_splitter(c.splitter, dims[0], c.fft_cutoff, c.fft_learnable_cutoff) if c.use_hf_path else None

        self.lf_encoder = nn.ModuleList(
            nn.Sequential(*(LFBlock(dims[i], heads(dims[i]), c.window_size, next(shifts), c.ffn_expansion,
                                    c.use_attention, next(drop_rates), c.prune_threshold)
                            for _ in range(c.enc_blocks[i])))
            for i in range(c.levels))
        self.lf_down = nn.ModuleList(Downsample(dims[i]) for i in range(c.levels))
        if c.use_hf_path:
            self.hf_encoder = nn.ModuleList(hf_blocks(dims[i], c.enc_blocks[i]) for i in range(c.levels))
            self.hf_down = nn.ModuleList(Downsample(dims[i]) for i in range(c.levels))
            self.fusions = nn.ModuleList(CrossFrequencyFusion(dims[i]) for i in range(c.levels))

        paths = 2 if c.use_hf_path else 1
        bottom = dims[c.levels]
        self.bottleneck_merge = nn.Conv2d(paths * bottom, bottom, 1)
        self.bottleneck = nn.Sequential(*(
            TransformerBlock(bottom,
                             build_token_mixer(bottom, heads(bottom), c.window_size, next(shifts), c.use_attention,
                                               c.prune_threshold),
                             self.build_ffn(bottom), next(drop_rates))
            for _ in range(c.bottleneck_blocks)))

        self.up = nn.ModuleList(Upsample(dims[i + 1]) for i in range(c.levels))
        self.skip_merge = nn.ModuleList(nn.Conv2d((paths + 1) * dims[i], dims[i], 1) for i in range(c.levels))
        self.decoder = nn.ModuleList(hf_blocks(dims[i], c.dec_blocks[i]) for i in range(c.levels))

        self.refine = TextureRefinementHead(dims[0])
        self.reconstruct = build_reconstruction_head(c.upsampler, dims[0], c.in_channels, c.scale)
        self.bicubic = BicubicUpsample(c.in_channels, c.scale) if c.scale > 1 else None
        self.detail = 1.0  # the HF gain (see set_detail); a plain float, so fusion, copies and export keep it
        self.to(memory_format=torch.channels_last)

    def set_detail(self, gain: float) -> None:
        """The draft's over-sharpening control: scale the HF stream right after the frequency split (1 = as
        trained, bit for bit; 0 = the LF path alone, the smoothest output; above 1 = crisper edges and texture)."""
        if not 0.0 <= gain <= 2.0:
            raise ValueError(f"detail {gain}: allowed 0 to 2 (1 = as trained)")
        if gain != 1.0 and self.splitter is None:
            raise ValueError("this model has no HF path (an LF-only ablation): detail has nothing to scale")
        self.detail = float(gain)

    def build_ffn(self, channels: int) -> nn.Module:
        c = self.config
        if not c.use_moe:
            return GDFN(channels, c.ffn_expansion)
        return SelectiveMoEFFN(channels, c.ffn_expansion, c.num_experts, c.top_k, c.capacity_factor,
                               c.moe_balance_weight, c.moe_zloss_weight, c.router_noise)

    # -- the diagram -------------------------------------------------------------------------------------
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        # NHWC runs the many thin convs 2-10x faster on CPU (oneDNN) and suits tensor cores on GPU.
        image = pad_to_multiple(image, self.config.pad_multiple).contiguous(memory_format=torch.channels_last)

        features = self.stem(image)
        lf, hf = self.split(features)
        skips = []
        for level in range(self.config.levels):
            lf, hf = self.encode(level, lf, hf)
            skips.append((lf, hf))
            lf, hf = self.downsample(level, lf, hf)
        x = self.bottleneck(self.merge_paths(lf, hf))
        for level in reversed(range(self.config.levels)):
            x = self.decode(level, x, skips[level])
        x = self.refine(x + features)
        # The sum in fp32 and then the input's dtype: under bf16 autocast a bf16 sum would round the image itself
        # to 8 mantissa bits (a grey level's step in the highlights).
        out = (self.reconstruct(x).float() + self.upsample_input(image)).to(image.dtype)

        s = self.config.scale
        return out[..., : h * s, : w * s]

    # -- the diagram's boxes -------------------------------------------------------------------------------
    def split(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.splitter is None:  # LF-only ablation: the single path sees everything
            return features, None
        lf, hf = self.splitter(features)
        return lf, hf if self.detail == 1.0 else hf * self.detail

    def encode(self, level: int, lf: torch.Tensor, hf: torch.Tensor | None):
        lf = self.lf_encoder[level](lf)
        if hf is None:
            return lf, None
        return self.fusions[level](lf, self.hf_encoder[level](hf))

    def downsample(self, level: int, lf: torch.Tensor, hf: torch.Tensor | None):
        return self.lf_down[level](lf), None if hf is None else self.hf_down[level](hf)

    def merge_paths(self, lf: torch.Tensor, hf: torch.Tensor | None) -> torch.Tensor:
        return self.bottleneck_merge(lf if hf is None else torch.cat([lf, hf], dim=1))

    def decode(self, level: int, x: torch.Tensor, skip: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
        parts = [self.up[level](x), *(s for s in skip if s is not None)]
        return self.decoder[level](self.skip_merge[level](torch.cat(parts, dim=1)))

    def upsample_input(self, image: torch.Tensor) -> torch.Tensor:
        """The global residual: bicubic rather than bilinear, the stronger starting point (about +0.8 dB on the
        held-out photos at x2) for the same negligible cost. Always fp32, outside autocast: it carries the whole
        image, which bf16 would round off (Set5 x4 -0.012 dB)."""
        if self.bicubic is None:
            return image.float()
        with torch.autocast(image.device.type, enabled=False):
            return self.bicubic(image.float())

    # -- MoE introspection ---------------------------------------------------------------------------------
    def moe_layers(self) -> list[SelectiveMoEFFN]:
        return [m for m in self.modules() if isinstance(m, SelectiveMoEFFN)]

    def aux_loss(self) -> torch.Tensor:
        """MoE balance + z-loss of the last training forward (zero in eval, and when MoE is off)."""
        losses = [m.aux for m in self.moe_layers()]
        if not losses:
            return self.stem.conv.weight.new_zeros(())
        return torch.stack([loss.to(self.stem.conv.weight.device) for loss in losses]).sum()

    def expert_stats(self) -> list[dict[str, object]]:
        """Per MoE layer: the fraction of routed assignments each expert got, and the dropped fraction."""
        return [{"load": m.load.tolist(), "dropped": float(m.dropped)} for m in self.moe_layers()]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Replicate-pad bottom/right to a multiple. Always one F.pad (a cheap copy of the input image): a
    data-dependent early return would be frozen into traced exports."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="replicate")
