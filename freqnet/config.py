"""One typed configuration for HybridMoE-FreqNet: every hyper-parameter and every ablation switch of the draft."""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass
from typing import Any

SPLITTERS = ("fft", "laplacian")
UPSAMPLERS = ("pixelshuffle", "dysample")
SCALES = (1, 2, 3, 4)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one model. Immutable; `replace` makes variants, `validate` runs on construction."""

    scale: int = 4
    in_channels: int = 3
    dim: int = 32  # width at full resolution; doubles at each level down
    levels: int = 2  # number of 2x down-samplings in the encoder
    enc_blocks: tuple[int, ...] = (1, 1)  # LF and HF blocks per encoder level
    dec_blocks: tuple[int, ...] = (1, 1)  # conv blocks per decoder level
    bottleneck_blocks: int = 2
    head_dim: int = 16
    window_size: int = 8
    ffn_expansion: float = 2.0
    # Frequency splitter
    splitter: str = "fft"
    fft_cutoff: float = 0.15  # Gaussian low-pass cut-off in cycles/pixel
    fft_learnable_cutoff: bool = True
    # HF path: partial large kernel (PLKSR)
    plk_kernel: int = 13
    plk_ratio: float = 0.25
    # Selective MoE FFN (bottleneck)
    use_moe: bool = True
    num_experts: int = 4
    top_k: int = 1
    capacity_factor: float = 1.25
    moe_balance_weight: float = 0.01
    moe_zloss_weight: float = 1e-3
    router_noise: float = 0.1
    # Ablation switches
    use_hf_path: bool = True
    use_attention: bool = True
    upsampler: str = "pixelshuffle"
    # Regularisation and compute saving
    drop_path: float = 0.0
    prune_threshold: float = 0.0  # windows with feature variance below this skip attention; 0 = off

    def __post_init__(self) -> None:
        object.__setattr__(self, "enc_blocks", tuple(self.enc_blocks))
        object.__setattr__(self, "dec_blocks", tuple(self.dec_blocks))
        self.validate()

    def validate(self) -> None:
        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                raise ValueError(f"ModelConfig.{name}={getattr(self, name)!r} is invalid: allowed {allowed}")

        need(self.scale in SCALES, "scale", f"one of {SCALES}")
        need(self.in_channels in (1, 3), "in_channels", "1 (grey) or 3 (RGB)")
        need(self.dim >= 8 and self.dim % 4 == 0, "dim", "a multiple of 4, at least 8")
        need(1 <= self.levels <= 4, "levels", "1 to 4")
        need(len(self.enc_blocks) == self.levels and min(self.enc_blocks) >= 1, "enc_blocks",
             f"{self.levels} positive integers (one per level)")
        need(len(self.dec_blocks) == self.levels and min(self.dec_blocks) >= 0, "dec_blocks",
             f"{self.levels} non-negative integers (one per level)")
        need(self.bottleneck_blocks >= 1, "bottleneck_blocks", "at least 1")
        need(self.head_dim >= 4 and self.dim % self.head_dim == 0, "head_dim", "a divisor of dim, at least 4")
        need(self.window_size >= 2 and self.window_size % 2 == 0, "window_size", "an even integer >= 2")
        need(self.ffn_expansion > 0, "ffn_expansion", "a positive number")
        need(self.splitter in SPLITTERS, "splitter", f"one of {SPLITTERS}")
        need(0.0 < self.fft_cutoff <= 0.5, "fft_cutoff", "a frequency in (0, 0.5] cycles/pixel")
        need(self.plk_kernel >= 3 and self.plk_kernel % 2 == 1, "plk_kernel", "an odd integer >= 3")
        need(0.0 < self.plk_ratio <= 1.0, "plk_ratio", "a fraction in (0, 1]")
        need(self.num_experts >= 1, "num_experts", "at least 1")
        need(1 <= self.top_k <= min(2, self.num_experts), "top_k", "1 or 2, and at most num_experts")
        need(self.capacity_factor > 0, "capacity_factor", "a positive number")
        need(self.moe_balance_weight >= 0, "moe_balance_weight", "a non-negative number")
        need(self.moe_zloss_weight >= 0, "moe_zloss_weight", "a non-negative number")
        need(self.router_noise >= 0, "router_noise", "a non-negative number")
        need(self.upsampler in UPSAMPLERS, "upsampler", f"one of {UPSAMPLERS}")
        need(0.0 <= self.drop_path < 1.0, "drop_path", "a probability in [0, 1)")
        need(self.prune_threshold >= 0, "prune_threshold", "a non-negative number (0 turns pruning off)")

    @property
    def dims(self) -> list[int]:
        """Channel width at each encoder level plus the bottleneck."""
        return [self.dim * 2**i for i in range(self.levels + 1)]

    @property
    def pad_multiple(self) -> int:
        """Input sides are padded to this so every down-sampling halves an even size."""
        return 2**self.levels

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        for name in sorted(set(values) - known):
            match = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {match[0]!r}?" if match else f"known fields: {sorted(known)}"
            raise ValueError(f"unknown ModelConfig field {name!r}; {hint}")
        return cls(**values)


PRESETS: dict[str, dict[str, Any]] = {
    # Each held to a published network's CPU latency (docs/preset_latency.md): tiny to RLFN's, small to IMDN's; base
    # (the shipped models) takes ~1.3x IMDN's; large is the quality end (~7 M, PLKSR's class).
    "tiny": dict(dim=16, levels=2, enc_blocks=(1, 1), dec_blocks=(1, 1), bottleneck_blocks=1, head_dim=16,
                 ffn_expansion=1.5, plk_kernel=13),
    # One level since freqnet 0.2 (0.1: two levels, enc (1, 2), dec (1, 1), 0.92 M; the shipped `restore`). Chosen by
    # training candidates at one budget (2000 iterations, docs/benchmarks.md): Set5 / Urban100 30.01 / 24.06 against
    # 29.37 / 23.65 for `tiny`, 37.23 dB on the held-out photos against 37.07 for SPAN at that budget, in 0.92x IMDN's
    # ONNX Runtime time. One bottleneck block scored above two on all four standard sets, and cost less.
    "small": dict(dim=24, levels=1, enc_blocks=(3,), dec_blocks=(2,), bottleneck_blocks=1, head_dim=12,
                  plk_kernel=13),
    # One level: five blocks at full resolution, the bottleneck at half. At one training budget this beat SPAN by
    # 0.52 dB and the two-level base (2.66 M) by 0.70 dB (docs/peers.md): at these budgets compute at full
    # resolution is what pays. The shipped x4 model is this preset.
    "base": dict(dim=32, levels=1, enc_blocks=(3,), dec_blocks=(2,), bottleneck_blocks=3, head_dim=16,
                 plk_kernel=17),
    "large": dict(dim=48, levels=2, enc_blocks=(2, 3), dec_blocks=(2, 2), bottleneck_blocks=4, head_dim=16,
                  plk_kernel=17),
}


def preset_config(preset: str = "base", scale: int = 4, **overrides: Any) -> ModelConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: allowed {sorted(PRESETS)}")
    values = {**PRESETS[preset], "scale": scale, **overrides}
    return ModelConfig.from_dict(values)
