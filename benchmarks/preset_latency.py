"""Each preset's CPU latency beside the published network it must match (issue 12: `tiny` ≤ RLFN, `small` ≤ IMDN,
and the shipped `base` against IMDN, the project's goal), in one round-robin run: ours fused in PyTorch (as
`freqnet upscale` runs it) and exported to ONNX Runtime, the anchors (the authors' ONNX files) in ONNX Runtime.
×4, fp32, batch 1, 256² input, median of `--repeats` calls after warm-up.

    python benchmarks/preset_latency.py --anchors ../shared/anchors --out docs/preset_latency.md [--threads 2] \
        [--models x4=IMDN runs/light/tiny1/checkpoints/iter_00002000_ema.safetensors=RLFN] \
        [--candidates small1=small,levels=1,enc_blocks=2,dec_blocks=2,bottleneck_blocks=2=IMDN]

The presets run with random weights (latency does not depend on them, except through the MoE's routing: tokens
that pick the same expert run as one batch); `--models` times trained models (a shipped name or a weights file,
each with the anchor it is held to) beside them, by default the shipped `x4` as the trained `base`;
`--candidates` times presets with overrides (random weights too), to choose a preset before training it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import inference_call, interleaved_medians, machine, onnx_call, write_report  # noqa: E402

from freqnet.export import export_onnx  # noqa: E402
from freqnet.inference import Upscaler  # noqa: E402
from freqnet.models import build_model, fuse  # noqa: E402
from freqnet.onnx_model import OnnxModel  # noqa: E402

SIDE = 256
# The latency bar of each preset: the published network whose CPU time it must not exceed (issue 12). `large` has
# none: it is the quality end of the range.
NAMED_ANCHOR = {"tiny": "RLFN", "small": "IMDN", "base": "IMDN"}


def candidate(spec: str) -> tuple[str, torch.nn.Module, str]:
    """NAME=PRESET,KEY=VALUE,...=ANCHOR: a preset with ModelConfig overrides (block tuples written 3/2)."""
    name, rest = spec.split("=", 1)
    rest, anchor = rest.rsplit("=", 1)
    preset, *pairs = rest.split(",")
    overrides = {}
    for pair in pairs:
        key, value = pair.split("=")
        numbers = [float(v) if "." in v else int(v) for v in value.split("/")]
        overrides[key] = tuple(numbers) if key.endswith("_blocks") and key != "bottleneck_blocks" else numbers[0]
    return name, fuse(build_model(preset, scale=4, **overrides)), anchor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--anchors", type=Path, required=True, help="folder of <Network>_x4.onnx files")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "base", "large"])
    parser.add_argument("--models", nargs="+", default=["x4=IMDN"], metavar="MODEL=ANCHOR",
                        help="trained models to time beside the presets: a shipped name or a weights file, "
                        "and the anchor whose time it must not exceed")
    parser.add_argument("--candidates", nargs="+", default=[], metavar="NAME=PRESET,KEY=VALUE,...=ANCHOR",
                        help="presets with overrides (random weights), each with the anchor it is held to")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    models = {preset: fuse(build_model(preset, scale=4)) for preset in args.presets}
    bars = dict(NAMED_ANCHOR)
    trained = set()
    for spec in args.models:
        name, bars[name] = spec.rsplit("=", 1)
        models[name] = Upscaler(name, tile=None).model
        trained.add(name)
    for spec in args.candidates:
        name, models[name], bars[name] = candidate(spec)
    anchors = {path.stem.split("_x")[0]: OnnxModel(path, args.threads) for path in sorted(args.anchors.glob("*_x4.onnx"))}
    x = torch.rand(1, 3, SIDE, SIDE)
    calls = {}
    with tempfile.TemporaryDirectory() as work:
        for index, (name, model) in enumerate(models.items()):
            path = Path(work) / f"{index}.onnx"
            export_onnx(model, path, dynamic=True)
            calls[f"{name} PyTorch"] = inference_call(model, x)
            calls[f"{name} ORT"] = onnx_call(OnnxModel(path, args.threads), x.numpy())
        calls |= {f"{name} ORT": onnx_call(model, x.numpy()) for name, model in anchors.items()}
        ms = {name: 1000 * seconds for name, seconds in interleaved_medians(calls, repeats=args.repeats).items()}

    def anchor_of(name: str) -> str | None:
        return next((a for a in anchors if a.split("-")[0] == bars.get(name)), None)

    rows = ["| model | params (fused) | PyTorch ms | ORT ms | named anchor | anchor ORT ms | ours / anchor: PyTorch, ORT "
            "| within the bar |", "|---|---|---|---|---|---|---|---|"]
    for name, model in models.items():
        label = f"`{name}`" + (" (trained)" if name in trained else " (random weights)")
        params = f"{sum(p.numel() for p in model.parameters()) / 1e6:.3f} M"
        ours = (ms[f"{name} PyTorch"], ms[f"{name} ORT"])
        anchor = anchor_of(name)
        if anchor is None:
            rows.append(f"| {label} | {params} | {ours[0]:.0f} | {ours[1]:.0f} | — | | | |")
            continue
        bar = ms[f"{anchor} ORT"]
        verdict = "yes" if max(ours) <= bar else ("in ORT only" if ours[1] <= bar else
                                                   "in PyTorch only" if ours[0] <= bar else "no")
        rows.append(f"| {label} | {params} | {ours[0]:.0f} | {ours[1]:.0f} | {anchor} | {bar:.0f} | "
                    f"{ours[0] / bar:.2f}×, {ours[1] / bar:.2f}× | {verdict} |")
    anchor_rows = ["| anchor | params | ORT ms |", "|---|---|---|"]
    anchor_rows += [f"| {name} | {model.parameters() / 1e6:.3f} M | {ms[f'{name} ORT']:.0f} |"
                    for name, model in anchors.items()]
    write_report(["# Preset latency beside the named anchors (generated by benchmarks/preset_latency.py)", "",
                  f"Machine: {machine()}; ONNX Runtime on {args.threads} threads. ×4, fp32, batch 1, {SIDE}² input, "
                  f"median of {args.repeats} round-robin calls of every cell after 2 warm-up calls each. Ours fused "
                  "(deploy form), in PyTorch eager as `freqnet upscale` runs it and exported with `freqnet export "
                  "--dynamic`; the anchors are the authors' ONNX files.", "", *rows, "", *anchor_rows], args.out)


if __name__ == "__main__":
    main()
