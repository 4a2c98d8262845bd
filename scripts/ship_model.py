"""Ship a trained run: fuse its final EMA weights into freqnet/weights/NAME.safetensors and write its model card
(held-out PSNR/SSIM against bicubic and Lanczos) into docs/models.md.

    python scripts/ship_model.py runs/photos_x4 x4 [--val data/photos/val_hr]
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
from freqnet.training.logger import wall_seconds

ROOT = Path(__file__).resolve().parent.parent
CARDS = ROOT / "docs" / "models.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--val", default="data/photos/val_hr")
    parser.add_argument("--recipe", default="bicubic")
    parser.add_argument("--note", default="", help="an extra line for the card (e.g. how a run was continued)")
    parser.add_argument("--machine", default="2-core AMD EPYC VM (the project's CI machine class), CPU only, fp32")
    args = parser.parse_args()

    config = yaml.safe_load((args.run / "config.yaml").read_text())
    checkpoints = sorted((args.run / "checkpoints").glob("iter_*_ema.safetensors"))
    source = checkpoints[-1]
    iteration = int(source.name.split("_")[1])
    model = freqnet.fuse(freqnet.load_model(source))
    target = ROOT / "freqnet" / "weights" / f"{args.name}.safetensors"
    freqnet.save_model(model, target, extra={"name": args.name, "trained_iterations": str(iteration),
                                             "training_config": yaml.safe_dump(config)})
    scale = model.config.scale
    start = time.perf_counter()
    rows = evaluate(Upscaler(model, tile="auto"), [Dataset("held-out", args.val, recipe=args.recipe)], scale)
    eval_seconds = time.perf_counter() - start
    scores = means(rows, lambda r: ())[()]
    baseline = "lanczos" if "lanczos" in scores else "input"
    m, lanczos = scores["model"], scores[baseline]
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
        f"EMA weights; wall time {wall_seconds(args.run) / 60:.0f} min on {args.machine} "
        "(two runs shared the 2 cores).",
        *([f"- {args.note}"] if args.note else []),
        f"- Held-out photos ({len(rows)}, full size, never trained on), PSNR/SSIM on Y, crop {scale}:",
        "",
        "| method | PSNR | SSIM |", "|---|---|---|",
        *(f"| {name} | {v['psnr']:.3f} | {v['ssim']:.4f} |" for name, v in scores.items()),
        "",
        f"**{m['psnr'] - lanczos['psnr']:+.2f} dB over {'Lanczos' if baseline == 'lanczos' else 'the degraded input'}**"
        + (f", {m['psnr'] - scores['bicubic']['psnr']:+.2f} dB over MATLAB bicubic" if "bicubic" in scores else "")
        + f" (evaluation took {eval_seconds:.0f} s, tiled). Per image: "
        + ", ".join(f"{gain:+.2f}" for gain in sorted(
            r.scores["model"]["psnr"] - r.scores[baseline]["psnr"] for r in rows))
        + " dB (a mean over 4 photos is dominated by the easiest one; read the per-image rows).",
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
