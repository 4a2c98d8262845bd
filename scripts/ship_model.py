"""Ship a trained run: fuse its final EMA weights into freqnet/weights/NAME.safetensors and write its model card
(held-out PSNR/SSIM against bicubic and Lanczos) into docs/models.md.

    python scripts/ship_model.py runs/photos_x4 x4 [--val data/photos/val_hr]
    python scripts/ship_model.py runs/photos_restore_x1 restore --recipe denoise_sigma15 denoise_sigma25 \
        denoise_sigma50 deblur_iso deblur_aniso deblur_motion
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import yaml

import freqnet
from freqnet.evaluation import Dataset, evaluate, markdown, means
from freqnet.inference import Upscaler
from freqnet.info import count_parameters
from freqnet.models import locate, read_metadata
from freqnet.training.logger import wall_seconds

ROOT = Path(__file__).resolve().parent.parent
CARDS = ROOT / "docs" / "models.md"


def gains(rows: list, baseline: str) -> str:
    return ", ".join(f"{g:+.2f}" for g in sorted(r.scores["model"]["psnr"] - r.scores[baseline]["psnr"] for r in rows))


def summary(rows: list, scores: dict, baseline: str) -> list[str]:
    m, base = scores["model"], scores[baseline]
    return [
        "| method | PSNR | SSIM |", "|---|---|---|",
        *(f"| {name} | {v['psnr']:.3f} | {v['ssim']:.4f} |" for name, v in scores.items()),
        "",
        f"**{m['psnr'] - base['psnr']:+.2f} dB over {'Lanczos' if baseline == 'lanczos' else 'the degraded input'}**"
        + (f", {m['psnr'] - scores['bicubic']['psnr']:+.2f} dB over MATLAB bicubic" if "bicubic" in scores else "")
        + f". Per image: {gains(rows, baseline)} dB (a mean over 4 photos is dominated by the easiest one; read "
        "the per-image rows).",
    ]


def summary_per_degradation(rows: list, baseline: str) -> list[str]:
    """A restorer is only worth shipping if it helps on every degradation it claims, so each gets its row."""
    lines = [f"| degradation | model PSNR / SSIM | {baseline} PSNR / SSIM | gain (dB) | per image (dB) |",
             "|---|---|---|---|---|"]
    for (label,), scores in means(rows, lambda r: (r.label,)).items():
        m, base = scores["model"], scores[baseline]
        lines.append(f"| {label} | {m['psnr']:.2f} / {m['ssim']:.4f} | {base['psnr']:.2f} / {base['ssim']:.4f} | "
                     f"{m['psnr'] - base['psnr']:+.2f} | {gains([r for r in rows if r.label == label], baseline)} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--val", default="data/photos/val_hr")
    parser.add_argument("--recipe", nargs="+", default=["bicubic"],
                        help="degradations of the held-out photos; each recipe scores every photo once")
    parser.add_argument("--note", default="", help="an extra line for the card (e.g. how a run was continued)")
    parser.add_argument("--machine", default="2-core AMD EPYC VM (the project's CI machine class), CPU only, fp32")
    args = parser.parse_args()

    config = yaml.safe_load((args.run / "config.yaml").read_text())
    source = locate(args.run)  # the newest intact EMA weights
    iteration = int(read_metadata(source)["iteration"])
    model = freqnet.fuse(freqnet.load_model(source))
    target = ROOT / "freqnet" / "weights" / f"{args.name}.safetensors"
    freqnet.save_model(model, target, extra={"name": args.name, "trained_iterations": str(iteration),
                                             "training_config": yaml.safe_dump(config)})
    scale = model.config.scale
    start = time.perf_counter()
    rows = evaluate(Upscaler(model, tile="auto"), [Dataset("held-out", args.val, recipe=r) for r in args.recipe], scale)
    scores = means(rows, lambda r: ())[()]
    baseline = "lanczos" if "lanczos" in scores else "input"
    card = "\n".join([
        f"<!-- card:{args.name} -->",
        f"## `{args.name}` — ×{scale}, preset `{config['model']['preset']}`",
        "",
        f"- File: `freqnet/weights/{args.name}.safetensors` (fused, {target.stat().st_size / 1e6:.1f} MB, "
        f"{count_parameters(model) / 1e6:.3f} M parameters).",
        f"- Data: the offline photos (`scripts/prepare_offline_photos.py`: scikit-image CC0 photos, Debian "
        f"mate-backgrounds down-scaled ≥ 2×, libjxl-testdata lossless photos), 256² sub-images; LR by the "
        f"`{config['data']['train']['recipe']}` recipe. Not DIV2K/DF2K: these numbers are not comparable with papers.",
        f"- Training: `{config['name']}` config (`configs/{config['name']}.yaml`), {iteration} iterations, batch "
        f"{config['data']['train']['batch_size']}, HR patch {config['data']['train']['patch_size']}, "
        f"EMA weights; wall time {wall_seconds(args.run) / 60:.0f} min on {args.machine}.",
        *([f"- {args.note}"] if args.note else []),
        f"- Held-out photos ({len({r.image for r in rows})}, full size, never trained on), "
        f"PSNR/SSIM on Y, crop {scale}, evaluation {time.perf_counter() - start:.0f} s (tiled):",
        "",
        *(summary(rows, scores, baseline) if len(args.recipe) == 1 else summary_per_degradation(rows, baseline)),
        "",
        "<details><summary>per image</summary>", "", markdown(rows), "", "</details>",
        f"<!-- /card:{args.name} -->",
    ])
    text = CARDS.read_text() if CARDS.is_file() else "# Shipped models\n\n"
    pattern = re.compile(rf"<!-- card:{args.name} -->.*?<!-- /card:{args.name} -->", re.S)
    text = pattern.sub(card, text) if pattern.search(text) else text.rstrip() + "\n\n" + card + "\n"
    CARDS.write_text(text)
    print(card)


if __name__ == "__main__":
    main()
