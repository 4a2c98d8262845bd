"""Peers at equal budget: SAFMN, SPAN, PLKSR-tiny and SwinIR-light (built by spandrel) beside our presets, all
trained by the one loop below with the same data, patches, iterations, seed and optimiser, then scored on the
held-out photos and timed on this CPU in one interleaved run.

spandrel is an optional extra, installed without its requirements (they pull a CUDA torchvision in; freqnet imports
it without torchvision, `freqnet.integrations.import_spandrel`):

    pip install --no-deps spandrel==0.4.2 einops
    python scripts/prepare_offline_photos.py --out data/photos                     # once
    python benchmarks/peers.py train --only SPAN [--iterations 2000]               # one process per model
    python benchmarks/peers.py report --benchmarks ../shared/benchmarks --out docs/peers.md

`train` uses the GPU when there is one; models already trained (their weights exist) are skipped, and one
stopped part-way (Ctrl-C, a session's end) continues from its last progress save when started again.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
import freqnet  # noqa: E402
from common import inference_call, interleaved_medians, machine, write_report  # noqa: E402
from freqnet.archs.network import HybridMoEFreqNet  # noqa: E402
from freqnet.data.datasets import HRFolderDataset  # noqa: E402
from freqnet.evaluation import STANDARD_SETS, Dataset, evaluate, means, standard_datasets  # noqa: E402
from freqnet.runtime import keep_freed_memory  # noqa: E402
from freqnet.training.config import OptimSection  # noqa: E402
from freqnet.training.ema import EMA  # noqa: E402
from freqnet.training.schedule import lr_factor  # noqa: E402


def peer_factories() -> dict[str, Callable[[int], nn.Module]]:
    """The peers' published light configurations, built by spandrel's architecture classes."""
    from freqnet.integrations import import_spandrel

    import_spandrel()
    from spandrel.architectures.PLKSR import PLKSR
    from spandrel.architectures.SAFMN import SAFMN
    from spandrel.architectures.SPAN import SPAN
    from spandrel.architectures.SwinIR import SwinIR

    return {
        "SAFMN": lambda scale: SAFMN(dim=36, n_blocks=8, ffn_scale=2.0, upscaling_factor=scale),
        "SPAN": lambda scale: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=48, upscale=scale),
        "PLKSR-tiny": lambda scale: PLKSR(dim=64, n_blocks=12, ccm_type="DCCM", kernel_size=13, split_ratio=0.25,
                                          use_ea=False, upscaling_factor=scale),
        # The same with the single-conv channel mixer (1.58 M): lighter than the published tiny model.
        "PLKSR-tiny-CCM": lambda scale: PLKSR(dim=64, n_blocks=12, ccm_type="CCM", kernel_size=13, split_ratio=0.25,
                                              use_ea=False, upscaling_factor=scale),
        "SwinIR-light": lambda scale: SwinIR(upscale=scale, img_size=64, window_size=8, img_range=1.0,
                                             depths=[6, 6, 6, 6], embed_dim=60, num_heads=[6, 6, 6, 6], mlp_ratio=2,
                                             upsampler="pixelshuffledirect"),
    }


# Our presets, and design probes: configurations that are not presets, trained here to test an idea at this budget.
# `base` is the one-level design that won this comparison (docs/peers.md calls it freqnet-base-1level).
OURS: dict[str, tuple[str, dict]] = {
    "freqnet-tiny": ("tiny", {}), "freqnet-small": ("small", {}), "freqnet-base": ("base", {}),
    # The base of before: two levels, its blocks spread over three resolutions (2.66 M).
    "freqnet-base-2level": ("base", {"levels": 2, "enc_blocks": (1, 2), "dec_blocks": (1, 1), "bottleneck_blocks": 4}),
    # base with three full-res blocks instead of five: about 0.77x SPAN's CPU time.
    "freqnet-base-lite": ("base", {"enc_blocks": (2,), "dec_blocks": (1,)}),
}
CANDIDATES = [*OURS, "SAFMN", "SPAN", "PLKSR-tiny", "PLKSR-tiny-CCM", "SwinIR-light"]


def build(name: str, scale: int) -> nn.Module:
    if name in OURS:
        preset, overrides = OURS[name]
        return freqnet.build_model(preset, scale, **overrides)
    return peer_factories()[name](scale)


def refresh_reparameterised(model: nn.Module) -> None:
    """SPAN's Conv3XC keeps a fused copy for eval that it rewrites only in training forwards: rebuild it from the
    (EMA-averaged) branches so the saved eval path matches the weights."""
    for module in model.modules():
        if hasattr(module, "update_params") and hasattr(module, "eval_conv"):
            module.update_params()


def deploy_parameters(model: nn.Module) -> int:
    """Parameters of the inference form: a Conv3XC counts only its fused eval conv, not its training branches."""
    branches = set()
    for module in model.modules():
        if hasattr(module, "update_params") and hasattr(module, "eval_conv"):
            fused = {id(p) for p in module.eval_conv.parameters()}
            branches |= {id(p) for p in module.parameters() if id(p) not in fused}
    return sum(p.numel() for p in model.parameters() if id(p) not in branches)


def weights_path(runs: Path, name: str) -> Path:
    return runs / name / "model.safetensors"


def progress_path(runs: Path, name: str) -> Path:
    return runs / name / "progress.pt"


def settings(args) -> dict[str, float | int]:
    """What makes two runs the same budget: a resumed run must match the one it continues."""
    return {"iterations": args.iterations, "batch": args.batch, "patch": args.patch, "scale": args.scale,
            "lr": args.lr, "warmup": args.warmup, "seed": args.seed}


def save_progress(path: Path, args, iteration: int, wall_s: float, model: nn.Module,
                  optimizer: torch.optim.Optimizer, ema: EMA) -> None:
    """Everything an interrupted run needs to continue as if it had never stopped (written atomically)."""
    state = {"settings": settings(args), "iteration": iteration, "wall_s": wall_s, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "ema": ema.state_dict(), "rng": torch.get_rng_state(),
             "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}
    partial = path.with_suffix(".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, partial)
    partial.replace(path)


def train(name: str, args) -> None:
    """Train one model at the shared budget. Progress is saved every `--save-every` iterations and a later call
    continues from it: the same batches in the same order, the same RNG, so a run split across sessions ends
    where an uninterrupted one would."""
    out = weights_path(args.runs, name)
    if out.is_file():
        print(f"{name}: already trained ({out})")
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    model = build(name, args.scale).to(device).train()
    optim = OptimSection(lr=args.lr, warmup=args.warmup, schedule="cosine", min_lr=1e-6, grad_clip=1.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=optim.lr, betas=(0.9, 0.99), weight_decay=0.0)
    ema = EMA(model, 0.995)
    ema_start = args.iterations // 10
    data = HRFolderDataset(args.data / "train_sub", args.scale, args.patch, "bicubic", seed=args.seed)
    data.repeat = math.ceil(args.iterations * args.batch / len(data.files))  # one epoch covers the whole run
    loader = DataLoader(data, batch_size=args.batch, shuffle=True, drop_last=True, num_workers=args.workers,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(args.seed))
    batches = iter(loader)
    done, wall_before = 0, 0.0
    progress = progress_path(args.runs, name)
    if progress.is_file():
        state = torch.load(progress, map_location="cpu", weights_only=True)
        if state["settings"] != settings(args):
            raise SystemExit(f"{progress} was saved with {state['settings']}, not {settings(args)}: delete it or "
                             "pass the same settings")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ema.load_state_dict(state["ema"])
        done, wall_before = state["iteration"], state["wall_s"]
        for _ in range(done):  # samples are seeded by index, so skipping batches replays the same order
            next(batches)
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"])
        print(f"{name}: resumed at iteration {done}", flush=True)
    start = time.perf_counter()
    for iteration in range(done, args.iterations):
        for group in optimizer.param_groups:
            group["lr"] = optim.lr * lr_factor(iteration, args.iterations, optim)
        batch = next(batches)
        lr_img, hr_img = batch["lr"].to(device, non_blocking=True), batch["hr"].to(device, non_blocking=True)
        loss = nn.functional.l1_loss(model(lr_img), hr_img)
        if isinstance(model, HybridMoEFreqNet) and model.moe_layers():
            loss = loss + model.aux_loss()  # the MoE balance term is part of our design; weight 1 as in configs/
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        optimizer.step()
        ema.update(model, 0.0 if iteration < ema_start else None)
        if (iteration + 1) % 200 == 0:
            print(f"{name}: iteration {iteration + 1}/{args.iterations}, loss {float(loss.detach()):.4f}, "
                  f"{(iteration + 1 - done) / (time.perf_counter() - start):.2f} it/s", flush=True)
        if (iteration + 1) % args.save_every == 0 and iteration + 1 < args.iterations:
            save_progress(progress, args, iteration + 1, wall_before + time.perf_counter() - start, model, optimizer, ema)
    wall = wall_before + time.perf_counter() - start
    averaged = ema.model.cpu()
    out.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(averaged, HybridMoEFreqNet):
        freqnet.save_model(freqnet.fuse(averaged), out)
    else:
        averaged.train()
        with torch.no_grad():
            refresh_reparameterised(averaged)
        save_file({k: v.contiguous() for k, v in averaged.state_dict().items()}, str(out))
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else machine()
    meta = {**settings(args), "wall_s": wall, "device": device_name, "resumed_at": done or None}
    (out.parent / "meta.json").write_text(json.dumps(meta, indent=1))
    progress.unlink(missing_ok=True)
    print(f"{name}: done in {wall:.0f} s on {device_name}")


def load(name: str, runs: Path, scale: int) -> nn.Module:
    path = weights_path(runs, name)
    if name in OURS:
        return freqnet.load_model(path).eval()  # saved fused
    model = build(name, scale)
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def untrained_deploy_form(name: str, scale: int) -> nn.Module:
    model = build(name, scale)
    return (freqnet.fuse(model) if name in OURS else model).eval()


class WholeImage:
    """The `run(pixels)` interface that `freqnet.evaluation.evaluate` drives, for any (N, 3, H, W) model."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    @torch.no_grad()
    def run(self, pixels: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None].float()
        return self.model(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()


def standard_scores(models: dict[str, nn.Module], root: Path, scale: int) -> dict[str, dict[str, float]]:
    """PSNR-Y of every model on the field's test sets (official LR where the folder has it), all models in one
    pass over the images."""
    rows = evaluate({name: WholeImage(model) for name, model in models.items()},
                    standard_datasets(root, STANDARD_SETS, scale), scale, baselines=())
    by_set = means(rows, lambda r: (r.dataset,))
    scores = {name: {dataset: by_set[(dataset,)][name]["psnr"] for dataset in STANDARD_SETS} for name in models}
    for name, per_set in scores.items():
        print(f"{name}: " + " / ".join(f"{per_set[s]:.2f}" for s in STANDARD_SETS), flush=True)
    return scores


def training_status(args, name: str) -> str:
    progress = progress_path(args.runs, name)
    if not progress.is_file():
        return "not trained"
    done = torch.load(progress, map_location="cpu", weights_only=True)["iteration"]
    return f"in progress, {done}/{args.iterations}"


def report(args) -> str:
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    names = [n for n in args.only if weights_path(args.runs, n).is_file()]
    if not names:
        raise SystemExit(f"no trained models under {args.runs}: run `peers.py train` first")
    models = {name: load(name, args.runs, args.scale) for name in names}
    untrained = {name: untrained_deploy_form(name, args.scale) for name in args.only if name not in names}
    meta = {name: json.loads((weights_path(args.runs, name).parent / "meta.json").read_text()) for name in names}
    held_out = [Dataset("held-out", str(args.data / "val_hr"))]
    scores, baselines = {}, None
    for name, model in models.items():
        rows = evaluate(WholeImage(model), held_out, args.scale,
                        baselines=("bicubic", "lanczos") if baselines is None else ())
        mean = means(rows, lambda r: ())[()]
        baselines = baselines or mean
        scores[name] = mean["model"]
        print(f"{name}: {scores[name]['psnr']:.3f} dB", flush=True)
    standard = standard_scores(models, args.benchmarks, args.scale) if args.benchmarks else {}

    timed = {**models, **untrained}  # an untrained model is as fast as a trained one: time it all the same
    sizes = args.latency_sizes
    latency = {}
    for size in sizes:
        x = torch.rand(1, 3, size, size)  # one input per size, shared by every model
        calls = {name: inference_call(m, x) for name, m in timed.items()}
        latency[size] = interleaved_medians(calls, repeats=args.repeats)

    def ms(name: str) -> str:
        return " / ".join(f"{latency[size][name] * 1e3:.1f}" for size in sizes)

    def times(name: str, other: str) -> str:
        return " / ".join(f"{latency[size][name] / latency[size][other]:.2f}" for size in sizes)

    sets = STANDARD_SETS if standard else ()
    reference = "freqnet-small" if "freqnet-small" in names else names[0]
    first = meta[names[0]]
    lanczos = baselines["lanczos"]["psnr"]
    lines = [
        "# Peers at equal budget (generated by benchmarks/peers.py)", "",
        f"Every model: ×{args.scale} classical SR, trained by one loop (`benchmarks/peers.py train`): "
        f"{first['iterations']} iterations, batch {first['batch']}, HR patch {first['patch']}, L1 (+ our MoE balance "
        f"term), AdamW lr {first['lr']} with {first['warmup']} warm-up iterations and cosine decay, EMA 0.995, seed {first['seed']}, "
        "the same offline photos (`scripts/prepare_offline_photos.py`). No model got its own tuned recipe; where "
        "each was trained is in the table (the loop and its numbers are the same on either device).",
        f"Scored with the EMA weights on the {len(list((args.data / 'val_hr').iterdir()))} held-out photos "
        f"(PSNR/SSIM on Y, crop {args.scale}). Bicubic {baselines['bicubic']['psnr']:.3f} dB, Lanczos {lanczos:.3f} dB."
        + (f" Set5 / Set14 / BSD100 / Urban100: PSNR-Y (crop {args.scale}) from the official LR where the folder has "
           "it (`freqnet eval --benchmark` conventions)." if sets else ""),
        "CPU latency: deploy form (ours fused; SPAN's Conv3XC in its eval form), fp32, "
        f"{' and '.join(f'{size}²' for size in sizes)} input (a cell gives each, in that order), "
        f"median of {args.repeats} interleaved runs. Machine: {machine()}.", "",
        "These are short runs on photos that are not the published benchmarks; the peers' published numbers come "
        "from 500K iterations on DF2K. The table compares architectures under one small budget, nothing more.", "",
        f"| model | params | PSNR | vs Lanczos | vs {reference} | SSIM | "
        + "".join(f"{s} | " for s in sets) + "CPU ms | CPU × | trained on | train wall s |",
        "|---|---|---|---|---|---|" + "---|" * len(sets) + "---|---|---|---|",
    ]
    for name in names:
        s = scores[name]
        lines.append(f"| {name} | {deploy_parameters(models[name]) / 1e6:.3f} M | {s['psnr']:.3f} | "
                     f"{s['psnr'] - lanczos:+.3f} | {s['psnr'] - scores[reference]['psnr']:+.3f} | {s['ssim']:.4f} | "
                     + "".join(f"{standard[name][set_]:.2f} | " for set_ in sets) + f"{ms(name)} | "
                     f"{times(name, reference)} | {meta[name]['device'].split(',')[0]} | {meta[name]['wall_s']:.0f} |")
    for name, model in untrained.items():
        lines.append(f"| {name} | {deploy_parameters(model) / 1e6:.3f} M | — | — | — | — | " + "— | " * len(sets)
                     + f"{ms(name)} | {times(name, reference)} | {training_status(args, name)} | — |")
    if untrained:
        lines += ["", f"Not trained at this budget (no weights under `{args.runs}`): {', '.join(untrained)}; "
                  "timed only. A run in progress continues with `peers.py train --only NAME`."]
    on_sets = " and on every standard set" if sets else ""
    lines += ["", "## Where we lose", "",
              f"As good means at least the peer's PSNR on the held-out photos{on_sets}; as fast, at every size.", ""]
    ours = [n for n in names if n in OURS]

    def as_good(n: str, peer: str) -> bool:
        return scores[n]["psnr"] >= scores[peer]["psnr"] and all(standard[n][s] >= standard[peer][s] for s in sets)

    for peer in (n for n in names if n not in OURS):
        faster_and_better = [n for n in ours if as_good(n, peer)
                             and all(latency[size][n] <= latency[size][peer] for size in sizes)]
        if faster_and_better:
            lines.append(f"- {peer}: beaten on both axes by {', '.join(faster_and_better)}.")
        else:
            better = [f"{n} is {scores[n]['psnr'] - scores[peer]['psnr']:+.3f} dB at {times(n, peer)}× "
                      "its time" for n in ours if as_good(n, peer)]
            lines.append(f"- {peer}: none of ours is both as fast and as good ({ms(peer)} ms, "
                         f"{scores[peer]['psnr']:.3f} dB)" + (f"; {', '.join(better)}." if better else "."))
    return write_report(lines, args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "report"])
    parser.add_argument("--only", nargs="+", default=CANDIDATES, choices=CANDIDATES)
    parser.add_argument("--data", type=Path, default=Path("data/photos"))
    parser.add_argument("--runs", type=Path, default=Path("runs/peers"))
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save-every", type=int, default=100, help="iterations between resumable progress saves")
    parser.add_argument("--latency-sizes", type=int, nargs="+", default=[128, 256],
                        help="input sides to time; faster means faster at every one")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--benchmarks", type=Path, default=None,
                        help="the standard test sets' folder (Set5/Set14/BSD100/Urban100): report adds their PSNR-Y")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "train":
        for name in args.only:
            train(name, args)
    else:
        report(args)


if __name__ == "__main__":
    main()
