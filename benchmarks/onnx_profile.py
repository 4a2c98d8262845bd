"""Where ONNX Runtime spends a shipped model's time (issue 14: the exported graph should run no slower than the same
model in PyTorch): the model exported as `freqnet export --dynamic` writes it, run on one image with ORT's own
profiler, its node times summed by operator type and by the module of the draft each node came from (the exporter
names every node after its module path, e.g. `/bottleneck/bottleneck.0/transformer/mixer/MatMul`). PyTorch's and
ONNX Runtime's wall times are measured beside it, round-robin in the same process.

    python benchmarks/onnx_profile.py --model x4 --size 256 --out docs/onnx_profile.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import inference_call, interleaved_medians, machine, write_report  # noqa: E402

from freqnet.export import export_onnx  # noqa: E402
from freqnet.inference import Upscaler  # noqa: E402
from freqnet.onnx_model import OnnxModel, session_options  # noqa: E402


def module_of(node: str, depth: int) -> str:
    """The component of the draft an exported node belongs to, summed over the blocks that repeat it: its module
    path without block indices, cut to `depth` levels ('/lf_encoder.0/lf_encoder.0.1/transformer/mixer/MatMul_3'
    -> 'lf_encoder/transformer/mixer'). Nodes ONNX Runtime added (layout reorders) carry no path: '(runtime)'."""
    parts: list[str] = []
    for part in node.split("/")[1:-1]:
        part = re.sub(r"\.\d+", "", part)
        if not parts or parts[-1] != part:
            parts.append(part)
    return "/".join(parts[:depth]) if parts else "(runtime)"


def node_times(events: list[dict]) -> list[tuple[str, str, float]]:
    """(node name, operator, mean ms per run) from ORT profile events, leaving out each node's first run (the
    warm-up: allocation and kernel selection)."""
    runs: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            runs[event["name"].removesuffix("_kernel_time"), event["args"]["op_name"]].append((event["ts"], event["dur"]))
    return [(name, op, sum(d for _, d in sorted(r)[1:]) / 1000 / (len(r) - 1)) for (name, op), r in runs.items()
            if len(r) > 1]


def grouped(times: list[tuple[str, str, float]], key, top: int) -> list[tuple[str, float, int]]:
    """(group, ms, nodes), the largest `top` groups first."""
    ms: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for node in times:
        ms[key(node)] += node[2]
        count[key(node)] += 1
    return sorted(((group, ms[group], count[group]) for group in ms), key=lambda row: -row[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="x4", help="a shipped name or weights file")
    parser.add_argument("--size", type=int, default=256, help="input side (pixels)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3, help="profiled runs (after one warm-up run)")
    parser.add_argument("--depth", type=int, default=3, help="module path levels to group by")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    image = torch.rand(1, 3, args.size, args.size)
    upscaler = Upscaler(args.model)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "model.onnx"
        export_onnx(upscaler.model, path, dynamic=True)
        onnx_model = OnnxModel(path, threads=args.threads)
        channels_last = image.to(memory_format=torch.channels_last)
        wall = interleaved_medians({"PyTorch": inference_call(upscaler.model, channels_last),
                                    "ONNX Runtime": lambda: onnx_model.forward(image.numpy())}, repeats=5)
        times = profile(path, args.threads, image.numpy(), args.runs)
    total = sum(ms for _, _, ms in times)
    lines = [f"### Where ONNX Runtime spends `{args.model}`'s time, {args.size}² input", "",
             f"`python benchmarks/onnx_profile.py --model {args.model} --size {args.size}`; {machine()}. Wall time "
             f"(median of 5, round-robin): PyTorch {wall['PyTorch'] * 1000:.0f} ms, ONNX Runtime "
             f"{wall['ONNX Runtime'] * 1000:.0f} ms ({wall['ONNX Runtime'] / wall['PyTorch']:.2f}×). ORT's profiler, "
             f"mean of {args.runs} runs: {total:.0f} ms in {len(times)} nodes.", "",
             "| operator | ms | nodes |", "|---|---|---|"]
    lines += [f"| {op} | {ms:.1f} | {n} |" for op, ms, n in grouped(times, lambda t: t[1], 14)]
    lines += ["", "| module (summed over blocks) | ms | nodes |", "|---|---|---|"]
    lines += [f"| `{m}` | {ms:.1f} | {n} |" for m, ms, n in grouped(times, lambda t: module_of(t[0], args.depth), 20)]
    write_report(lines, args.out)


def profile(path: Path, threads: int, image: np.ndarray, runs: int) -> list[tuple[str, str, float]]:
    """Node times of `runs` profiled runs after a warm-up run, in a session set up as `OnnxModel`'s."""
    import onnxruntime as ort

    options = session_options(threads)
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        session.run(None, {"input": image})
    return node_times(json.loads(Path(session.end_profiling()).read_text()))


if __name__ == "__main__":
    main()
