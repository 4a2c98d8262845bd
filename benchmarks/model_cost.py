"""Model cost on CPU: parameters, MACs, latency per preset; fused vs training form; MoE vs dense; token
pruning; latency against input size. Writes a markdown report (see docs/benchmarks.md).

    python benchmarks/model_cost.py --out docs/model_cost.md [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import freqnet  # noqa: E402
from common import inference_call, interleaved_medians, machine, write_report  # noqa: E402
from freqnet.archs.window_attention import WindowAttention  # noqa: E402
from freqnet.info import count_macs, count_parameters  # noqa: E402
from freqnet.runtime import keep_freed_memory  # noqa: E402

PRESETS = ["tiny", "small", "base", "large"]


def preset_table(repeats: int) -> list[str]:
    rows = ["| preset | scale | input | params (train) | params (fused) | MACs (fused) | training form ms | fused ms | fused speed-up |",
            "|---|---|---|---|---|---|---|---|---|"]
    for scale, size in [(4, 128), (2, 256)]:
        x = torch.rand(1, 3, size, size)
        for preset in PRESETS:
            model = freqnet.build_model(preset, scale).eval()
            fused = freqnet.fuse(model)
            t = interleaved_medians({"train": inference_call(model, x), "fused": inference_call(fused, x)}, repeats)
            rows.append(f"| {preset} | x{scale} | {size}² | {count_parameters(model) / 1e6:.3f} M | "
                        f"{count_parameters(fused) / 1e6:.3f} M | {count_macs(fused, size, size) / 1e9:.2f} G | "
                        f"{t['train'] * 1e3:.1f} | {t['fused'] * 1e3:.1f} | {t['train'] / t['fused']:.2f}× |")
    return rows


def moe_table(repeats: int) -> list[str]:
    rows = ["| preset | MoE ms | dense FFN ms | MoE / dense | params MoE | params dense |", "|---|---|---|---|---|---|"]
    x = torch.rand(1, 3, 128, 128)
    for preset in PRESETS:
        moe = freqnet.fuse(freqnet.build_model(preset, 4))
        dense = freqnet.fuse(freqnet.build_model(preset, 4, use_moe=False))
        t = interleaved_medians({"moe": inference_call(moe, x), "dense": inference_call(dense, x)}, repeats)
        rows.append(f"| {preset} | {t['moe'] * 1e3:.1f} | {t['dense'] * 1e3:.1f} | {t['moe'] / t['dense']:.2f} | "
                    f"{count_parameters(moe) / 1e6:.3f} M | {count_parameters(dense) / 1e6:.3f} M |")
    return rows


def flat_photo(size: int = 256) -> tuple[torch.Tensor, str]:
    """A real photo with flat regions (scikit-image's CC0 astronaut: flat background), or a synthetic one."""
    try:
        from skimage import data
        from PIL import Image

        image = np.array(Image.fromarray(data.astronaut()).resize((size, size), Image.BICUBIC))
        name = "scikit-image astronaut"
    except ImportError:
        yy, xx = np.mgrid[:size, :size]
        image = np.where((xx < size // 2)[..., None], 0.5, np.random.default_rng(0).random((size, size, 3)))
        return torch.from_numpy(image).permute(2, 0, 1)[None].float(), "synthetic half-flat image"
    return torch.from_numpy(np.asarray(image)).permute(2, 0, 1)[None].float() / 255, name


def pruning_table(repeats: int, thresholds=(0.02, 0.05, 0.1, 0.2)) -> list[str]:
    """On the shipped x4 model (trained weights: pruning changes real outputs) at each threshold."""
    x, name = flat_photo()
    base = freqnet.load_model("x4")
    rows = [f"Input: {name}, {x.shape[-1]}² at ×4, the shipped `x4` model (dim {base.config.dim}).",
            "PSNR of the pruned output against the unpruned output (how much pruning changes the picture).", "",
            "| threshold | windows pruned | ms | speed-up vs off | PSNR vs unpruned | max change |",
            "|---|---|---|---|---|---|"]
    models = {"off": base}
    for threshold in thresholds:  # the shipped model is fused: build the same fused structure, then load
        pruned = freqnet.fuse(freqnet.HybridMoEFreqNet(base.config.replace(prune_threshold=threshold)))
        pruned.load_state_dict(base.state_dict())
        models[str(threshold)] = pruned
    t = interleaved_medians({k: inference_call(m, x) for k, m in models.items()}, repeats)
    with torch.inference_mode():
        reference = models["off"](x).clamp(0, 1)
        for key, model in models.items():
            out = model(x).clamp(0, 1)
            layers = [m for m in model.modules() if isinstance(m, WindowAttention)]
            fraction = sum(m.pruned_fraction for m in layers) / len(layers)
            mse = (out - reference).square().mean().item()
            psnr = "∞" if mse == 0 else f"{10 * np.log10(1 / mse):.1f} dB"
            rows.append(f"| {key} | {fraction:.0%} | {t[key] * 1e3:.1f} | {t['off'] / t[key]:.2f}× | {psnr} | "
                        f"{(out - reference).abs().max().item():.4f} |")
    return rows


def size_table(repeats: int) -> list[str]:
    sizes = [64, 128, 256, 512]
    rows = ["| preset | " + " | ".join(f"{s}² ms" for s in sizes) + " | 4× pixels → time ratio (median) |",
            "|---|" + "---|" * (len(sizes) + 1)]
    for preset in ["tiny", "base"]:
        fused = freqnet.fuse(freqnet.build_model(preset, 4))
        t = interleaved_medians({s: inference_call(fused, torch.rand(1, 3, s, s)) for s in sizes}, max(3, repeats // 2))
        ratios = [t[b] / t[a] for a, b in zip(sizes, sizes[1:])]
        rows.append(f"| {preset} | " + " | ".join(f"{t[s] * 1e3:.1f}" for s in sizes) +
                    f" | {float(np.median(ratios)):.2f} ({', '.join(f'{r:.2f}' for r in ratios)}) |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    keep_freed_memory()  # as the CLI does

    sections = [
        "# Model cost (generated by benchmarks/model_cost.py)", "",
        f"Machine: {machine()}. fp32, batch 1, median of {args.repeats} interleaved runs.", "",
        "## Presets", "", *preset_table(args.repeats), "",
        "Peers (SAFMN, SPAN, PLKSR-tiny, SwinIR-light) are timed beside our presets in one run by "
        "`benchmarks/peers.py`: see peers.md.", "",
        "## MoE vs dense FFN (fused, ×4, 128²)", "", *moe_table(args.repeats), "",
        "## Token pruning", "", *pruning_table(args.repeats), "",
        "## Latency against input size (fused, ×4)", "", *size_table(args.repeats), "",
    ]
    write_report(sections, args.out)


if __name__ == "__main__":
    main()
