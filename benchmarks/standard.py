"""Where each shipped model stands on the field's test sets, in one run: PSNR/SSIM-Y on Set5, Set14, BSD100 and
Urban100 beside bicubic and the authors' DIV2K-trained checkpoints of published networks (ONNX files), with
parameters and CPU latency. Latency: fp32, 256x256 input, median of 7 round-robin calls after warm-up; the anchors
in ONNX Runtime, ours both in PyTorch (the CLI's runtime) and exported to ONNX in ONNX Runtime (like for like).

    python benchmarks/standard.py --benchmarks ../shared/benchmarks --anchors ../shared/anchors \
        --out docs/standard_benchmarks.md [--models x2 x3 x4] [--sets Set5,Set14] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import inference_call, interleaved_medians, machine, write_report  # noqa: E402

from freqnet.evaluation import STANDARD_SETS, evaluate, means, standard_datasets  # noqa: E402
from freqnet.export import export_onnx  # noqa: E402
from freqnet.inference import Upscaler  # noqa: E402
from freqnet.models import shipped_models  # noqa: E402
from freqnet.onnx_model import OnnxModel  # noqa: E402

LATENCY_SIDE = 256
REFERENCE_ANCHOR = "IMDN"  # the bar the issues set: IMDN's quality at IMDN's CPU latency


def onnx_call(model: OnnxModel, x: np.ndarray):
    return lambda: model.forward(x)


def scale_section(scale: int, ours: list[str], anchors: list[Path], args, work: Path) -> list[str]:
    datasets = standard_datasets(args.benchmarks, args.sets, scale)
    upscalers = {name: Upscaler(name, tile=None) for name in ours}
    peers = {path.stem: OnnxModel(path, args.threads) for path in anchors}
    exported = {}
    for name, upscaler in upscalers.items():
        path = work / f"{name}.onnx"
        export_onnx(upscaler.model, path, dynamic=True)
        exported[name] = OnnxModel(path, args.threads)

    rows = evaluate({**upscalers, **peers}, datasets, scale, baselines=("bicubic",), progress=True)
    by_set = means(rows, lambda r: (r.dataset,))

    x = torch.rand(1, 3, LATENCY_SIDE, LATENCY_SIDE)
    calls = {f"{name} (PyTorch)": inference_call(u.model, x) for name, u in upscalers.items()}
    calls |= {f"{name} (ONNX Runtime)": onnx_call(m, x.numpy()) for name, m in exported.items()}
    calls |= {name: onnx_call(m, x.numpy()) for name, m in peers.items()}
    seconds = interleaved_medians(calls, repeats=args.repeats)
    reference = next((s for name, s in seconds.items() if name.startswith(REFERENCE_ANCHOR)), None)

    def latency(name: str) -> str:
        ms = seconds[name] * 1000
        return f"{ms:.0f}" + (f" ({seconds[name] / reference:.2f}×)" if reference else "")

    methods = ["bicubic", *peers, *upscalers]
    header = ("| method | params | " + " | ".join(d.name for d in datasets)
              + f" | CPU ms, {LATENCY_SIDE}² in (× {REFERENCE_ANCHOR}) |")
    lines = [f"## ×{scale}", "", header, "|---|---|" + "---|" * len(datasets) + "---|"]
    for method in methods:
        cells = " | ".join(f"{by_set[(d.name,)][method]['psnr']:.2f} / {by_set[(d.name,)][method]['ssim']:.4f}"
                           for d in datasets)
        if method == "bicubic":
            params, ms = "", ""
        elif method in peers:
            params, ms = f"{peers[method].parameters() / 1e3:.0f} K", f"{latency(method)} ORT"
        else:
            params = f"{sum(p.numel() for p in upscalers[method].model.parameters()) / 1e3:.0f} K"
            ms = f"{latency(f'{method} (PyTorch)')} PyTorch, {latency(f'{method} (ONNX Runtime)')} ORT"
        label = f"**`{method}` (ours)**" if method in upscalers else method
        lines.append(f"| {label} | {params} | {cells} | {ms} |")
    notes = [d for d in datasets if d.note != "official LR"]
    if notes:
        lines += ["", "LR: " + "; ".join(f"{d.name}: {d.note}" for d in notes) + "; the other sets: official LR."]
    gaps = []
    for name in upscalers:
        for peer in peers:
            gap = [by_set[(d.name,)][name]["psnr"] - by_set[(d.name,)][peer]["psnr"] for d in datasets]
            gaps.append(f"`{name}` − {peer}: " + ", ".join(f"{d.name} {g:+.2f}" for d, g in zip(datasets, gap)))
    return lines + ["", "PSNR-Y gaps (dB): " + "; ".join(gaps) + ".", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", type=Path, required=True, help="folder with Set5/, Set14/, BSD100/, Urban100/")
    parser.add_argument("--anchors", type=Path, required=True, help="folder of <Network>_x<scale>.onnx files")
    parser.add_argument("--models", nargs="+", default=None, help="our models (default: every shipped SR model)")
    parser.add_argument("--sets", default=",".join(STANDARD_SETS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.sets = [s for s in args.sets.split(",") if s]
    torch.set_num_threads(args.threads)

    names = args.models or [n for n in shipped_models() if n != "default"]
    by_scale: dict[int, list[str]] = {}
    for name in names:
        scale = Upscaler(name, tile=None).scale
        if scale > 1:
            by_scale.setdefault(scale, []).append(name)
    lines = ["# Standard benchmarks: shipped models beside published networks (generated by benchmarks/standard.py)", "",
             f"Machine: {machine()}; ONNX Runtime on {args.threads} threads. PSNR / SSIM on Y, crop = scale, uint8 "
             "(the papers' convention, `freqnet.metrics`). Anchors: the authors' DIV2K-trained checkpoints as ONNX. "
             f"Latency: fp32, one {LATENCY_SIDE}×{LATENCY_SIDE} input, median of {args.repeats} round-robin calls; "
             "ours in PyTorch (as `freqnet upscale` runs it) and exported with `freqnet export --dynamic` into "
             "ONNX Runtime, the runtime the anchors run in.", ""]
    with tempfile.TemporaryDirectory() as work:
        for scale in sorted(by_scale):
            anchors = sorted(args.anchors.glob(f"*_x{scale}.onnx"))
            lines += scale_section(scale, by_scale[scale], anchors, args, Path(work))
    write_report(lines, args.out)


if __name__ == "__main__":
    main()
