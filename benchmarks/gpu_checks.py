"""GPU checks: bf16/fp16 parity against fp32, inference latency per preset (and peers, when spandrel is
importable), and training speed, eager and compiled. Needs a CUDA device; writes a markdown report.

    python benchmarks/gpu_checks.py --out gpu_checks.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import freqnet  # noqa: E402
from common import speed_config, training_rate  # noqa: E402
from freqnet.data.image_io import read_image  # noqa: E402
from freqnet.inference import Upscaler, half_precision_copy  # noqa: E402
from freqnet.models import shipped_models  # noqa: E402
from freqnet.precision import AUTOCAST_DTYPES  # noqa: E402

PRESETS = ["tiny", "small", "base", "large"]
SAMPLES = Path(freqnet.__file__).parent / "assets" / "samples"
DEVICE = torch.device("cuda")  # --device cpu: a dry run of the script's logic on a machine without a GPU


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def gpu_ms(fn, repeats: int = 5, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def parity_models() -> dict[str, torch.nn.Module]:
    """Shipped (trained) models, plus untrained presets with a randomised output conv so the body's
    arithmetic reaches the output (a fresh model's zero-initialised head would make it plain bicubic)."""
    models = {f"shipped {name}": freqnet.load_model(name) for name in shipped_models() if name != "default"}
    for preset in ("tiny", "base", "large"):
        torch.manual_seed(0)
        model = freqnet.build_model(preset, 4)
        for p in model.parameters():
            if p.abs().sum() == 0 and p.dim() == 4:
                torch.nn.init.normal_(p, std=0.02)
        models[f"{preset} x4 (random)"] = model
    return {name: freqnet.fuse(m).eval().to(DEVICE) for name, m in models.items()}


def parity(lines: list[str]) -> None:
    photo = torch.from_numpy(read_image(SAMPLES / "chelsea.png").pixels.transpose(2, 0, 1).copy())[None].to(DEVICE)
    lr = photo.float()
    lines += [f"## bf16 / fp16 parity against fp32 (autocast, fused, chelsea {lr.shape[-1]}×{lr.shape[-2]})", "",
              "| model | bf16 PSNR vs fp32 | bf16 max diff | fp16 PSNR vs fp32 | fp16 max diff | finite |",
              "|---|---|---|---|---|---|"]
    for name, model in parity_models().items():
        with torch.inference_mode():
            ref = model(lr).float()
            cells, finite = [], True
            for dtype in (torch.bfloat16, torch.float16):
                with torch.autocast(DEVICE.type, dtype=dtype):
                    out = model(lr).float()
                finite &= bool(torch.isfinite(out).all())
                cells += [f"{psnr(out.clamp(0, 1), ref.clamp(0, 1)):.1f} dB", f"{float((out - ref).abs().max()):.2e}"]
        lines.append(f"| {name} | {' | '.join(cells)} | {finite} |")
    # The user-facing path: Upscaler with tiling on the GPU in bf16 against CPU fp32 on a whole photo.
    pixels = read_image(SAMPLES / "chelsea.png").pixels
    cpu = Upscaler("x4", tile=None, device="cpu").run(pixels)
    gpu = Upscaler("x4", tile=96, precision="bf16", device=str(DEVICE)).run(pixels)
    lines += ["", f"Upscaler x4 on chelsea ({pixels.shape[1]}×{pixels.shape[0]}): GPU bf16 with 96-px tiles vs CPU fp32 "
              f"untiled: {psnr(torch.from_numpy(gpu), torch.from_numpy(cpu)):.1f} dB, max diff "
              f"{float(np.abs(gpu - cpu).max()):.3f}.", ""]


def peers(names: list[str]) -> dict[str, torch.nn.Module]:
    """The named peers, built by spandrel (carried to a lease without torchvision: `gpu_session.sh stage`)."""
    try:
        from peers import peer_factories
        return {name: build(4) for name, build in peer_factories().items() if name in names}
    except ImportError as error:
        print(f"peers skipped: {error}")
        return {}


def latency(lines: list[str], height: int, width: int, compiled: list[str], peer_names: list[str]) -> None:
    """Eager cells per dtype, then `compiled` precisions through torch.compile as `freqnet upscale --compile` runs
    it (on a GPU with CUDA graphs: the eager forward is launch-bound), with each compile's own time."""
    x = torch.rand(1, 3, height, width, device=DEVICE)
    models = {preset: freqnet.fuse(freqnet.build_model(preset, 4)) for preset in PRESETS}
    models.update(peers(peer_names))
    mode = "reduce-overhead" if DEVICE.type == "cuda" else None
    lines += [f"## Inference latency, ×4, {width}×{height} input (the peers' published FPS setting), batch 1", "",
              "bf16 and fp16 run a copy with its weights cast once under autocast, as `freqnet upscale --precision` "
              "does (freqnet.inference.half_precision_copy); the last eager column is bf16 by autocast alone, "
              "every weight cast in every forward (what the leases before 2026-11-28 measured).", "",
              "| model | fp32 ms | bf16 ms | fp16 ms | fp16 FPS | bf16 autocast only ms |"
              + "".join(f" compiled {p} ms (compile s) |" for p in compiled),
              "|---|---|---|---|---|---|" + "---|" * len(compiled)]
    for name, model in models.items():
        model = model.eval().to(DEVICE)

        def eager_ms(target: torch.nn.Module, dtype: torch.dtype | None) -> str:
            try:
                return f"{gpu_ms(lambda: infer(target, x, dtype)):.1f}"
            except RuntimeError as error:  # a peer that cannot run a dtype: say so rather than stop
                print(f"{name} {dtype}: {error}")
                return "n/a"

        cells = [eager_ms(at_precision(model, dtype), dtype) for dtype in AUTOCAST_DTYPES.values()]
        cells.append(f"{1e3 / float(cells[2]):.1f}" if cells[2] != "n/a" else "n/a")
        cells.append(eager_ms(model, torch.bfloat16))
        print(f"{name} eager fp32 / bf16 / fp16 ms, fp16 FPS, bf16 autocast only: {' / '.join(cells)}", flush=True)
        for precision in compiled:  # peers too: issue 14 compares compiled with compiled
            torch._dynamo.reset()
            forward = torch.compile(at_precision(model, AUTOCAST_DTYPES[precision]), mode=mode)
            start = time.perf_counter()
            try:
                infer(forward, x, AUTOCAST_DTYPES[precision])
                synchronize()
                compile_s = time.perf_counter() - start
                cells.append(f"{gpu_ms(lambda: infer(forward, x, AUTOCAST_DTYPES[precision])):.1f} ({compile_s:.0f})")
            except Exception as error:  # a peer inductor cannot run compiled: say so rather than stop
                print(f"{name} compiled {precision}: {type(error).__name__}: {str(error)[:300]}")
                cells.append("failed")
                continue
            print(f"{name} compiled {precision}: {cells[-1]}", flush=True)  # a deadline keeps what it has
        lines.append(f"| {name} | {' | '.join(cells)} |")
        print(lines[-1], flush=True)
        model.cpu()
    lines.append("")


def at_precision(model: torch.nn.Module, dtype: torch.dtype | None) -> torch.nn.Module:
    return model if dtype is None else half_precision_copy(model, dtype)


def infer(model: torch.nn.Module, x: torch.Tensor, dtype: torch.dtype | None) -> None:
    with torch.inference_mode(), torch.autocast(DEVICE.type, dtype=dtype, enabled=dtype is not None):
        model(x)


def train_speed(lines: list[str], steps: int) -> None:
    lines += ["## Training speed (Trainer.step: L1 + MoE aux, AdamW, EMA; batches prefetched)", "",
              "| preset | batch × HR patch | fp32 it/s | bf16 it/s | peak GPU memory (bf16) |", "|---|---|---|---|---|"]
    batch, patch = 16, 256  # issue 14's setting: batch 16, LR patch 64 at x4
    for preset in PRESETS:
        cells, peak = [], 0.0
        for precision in ("fp32", "bf16"):
            if DEVICE.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            config = speed_config(preset, batch, patch, steps + 3, precision=precision)
            rate = training_rate(config, steps, warmup=3, synchronize=synchronize)
            cells.append(rate.it_per_s)
            peak = torch.cuda.max_memory_allocated() / 2**30 if DEVICE.type == "cuda" else 0.0
            # each cell as soon as it is measured: a deadline that stops the section keeps what it has
            print(f"{preset} {precision}: {rate.it_per_s:.2f} it/s, first step {rate.first_step_s:.1f} s", flush=True)
        lines.append(f"| {preset} | {batch} × {patch} | {cells[0]:.1f} | {cells[1]:.1f} | {peak:.2f} GiB |")
    lines.append("")


COMPILE_CELLS = ["fp32:eager", "bf16:eager", "fp32:reduce-overhead", "bf16:reduce-overhead", "fp32:default"]


def compiled_speed(lines: list[str], steps: int, cells: list[str]) -> None:
    """Training speed eager against `torch.compile` (the trainer's `compile: true`), with and without CUDA graphs
    (`compile_mode: reduce-overhead`): the eager step is launch-bound, so fewer launches is what should pay.
    `cells` are PRECISION:MODE pairs, measured in order (a deadline keeps the first ones)."""
    lines += ["## Training speed, eager against compiled (Trainer.step, batches prefetched)", "",
              "| preset | batch × HR patch | precision | mode | it/s | first step (compile) s |", "|---|---|---|---|---|---|"]
    batch, patch = 16, 256
    for preset in PRESETS:
        for precision, mode in (cell.split(":") for cell in cells):
            torch._dynamo.reset()
            fields = {"compile": True, "compile_mode": mode} if mode != "eager" else {}
            config = speed_config(preset, batch, patch, steps + 3, precision=precision, **fields)
            rate = training_rate(config, steps, warmup=3, synchronize=synchronize)
            lines.append(f"| {preset} | {batch} × {patch} | {precision} | {mode} | {rate.it_per_s:.1f} | "
                         f"{rate.first_step_s:.0f} |")
            print(lines[-1], flush=True)  # each cell as soon as it is measured: a deadline keeps what it has
    lines.append("")


def profile(lines: list[str]) -> None:
    """Where a forward spends its time, and how often it waits for the GPU (host syncs stall the launch queue)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    model = freqnet.fuse(freqnet.build_model("small", 4)).eval().to(DEVICE)
    x = torch.rand(1, 3, 120, 160, device=DEVICE)
    with torch.inference_mode():
        model(x)
        synchronize()
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            model(x)
            synchronize()
    events = prof.key_averages()
    syncs = sum(e.count for e in events if e.key in ("cudaStreamSynchronize", "cudaDeviceSynchronize"))
    copies = sum(e.count for e in events if e.key in ("aten::nonzero", "aten::item", "aten::_local_scalar_dense"))
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    lines += ["## Profile: small ×4 fused, 160×120 input, one forward", "",
              f"Kernel launches {launches}, host syncs {syncs}, ops that read GPU values on the host "
              f"(nonzero/item) {copies}.", "", "```",
              events.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40), "```", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, nargs=2, default=[480, 640], help="latency input height width")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sections", nargs="+", default=["parity", "latency", "profile", "train"],
                        choices=["parity", "latency", "profile", "train", "compile"])
    parser.add_argument("--presets", nargs="+", default=PRESETS, help="presets for latency and training speed")
    parser.add_argument("--latency-compiled", nargs="*", default=[], choices=list(AUTOCAST_DTYPES),
                        help="precisions to time compiled in --sections latency (each compiles once per preset)")
    parser.add_argument("--peers", nargs="*", default=["SPAN", "PLKSR-tiny", "SAFMN"],
                        help="peers timed beside the presets in --sections latency (benchmarks/peers.py names)")
    parser.add_argument("--compile-cells", nargs="+", default=COMPILE_CELLS, help="PRECISION:MODE for --sections compile")
    args = parser.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if DEVICE.type == "cuda" else "CPU (dry run)"
    lines = ["# GPU checks (generated by benchmarks/gpu_checks.py)", "",
             f"Device: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
             f"cuDNN {torch.backends.cudnn.version()}. cudnn.benchmark on; TF32 convolutions on (PyTorch default).", ""]
    PRESETS[:] = args.presets
    sections = {"parity": parity, "latency": lambda l: latency(l, *args.size, args.latency_compiled, args.peers), "profile": profile,
                "train": lambda l: train_speed(l, args.steps), "compile": lambda l: compiled_speed(l, args.steps, args.compile_cells)}
    for section in (sections[name] for name in args.sections):
        try:
            section(lines)
        except Exception as error:  # keep the other sections' numbers
            traceback.print_exc()
            lines += [f"(section failed: {type(error).__name__}: {error})", ""]
        print("\n".join(lines), flush=True)
        if args.out:
            args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
