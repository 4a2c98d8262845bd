"""Ship a trained run: fuse its final EMA weights into freqnet/weights/NAME.safetensors and write its model card
(held-out PSNR/SSIM against bicubic and Lanczos) into docs/models.md; with --benchmarks and --anchors the card
also carries the standard-set table beside bicubic, IMDN and CARN-M of that scale (refreshed alone when no run is
given, for a model already shipped).

    python scripts/ship_model.py x4 --run runs/photos_x4 --benchmarks ../shared/benchmarks --anchors ../shared/anchors
    python scripts/ship_model.py x2 --benchmarks ../shared/benchmarks --anchors ../shared/anchors
    python scripts/ship_model.py restore --run runs/photos_restore_x1 --recipe denoise_sigma15 denoise_sigma25 \
        denoise_sigma50 deblur_iso deblur_aniso deblur_motion
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from common import replace_block  # noqa: E402

import freqnet  # noqa: E402
from freqnet.data import list_images  # noqa: E402
from freqnet.data.datasets import image_size  # noqa: E402
from freqnet.evaluation import Dataset, evaluate, markdown, means, method_table, standard_datasets  # noqa: E402
from freqnet.inference import Upscaler  # noqa: E402
from freqnet.info import count_parameters  # noqa: E402
from freqnet.models import locate, read_metadata  # noqa: E402
from freqnet.onnx_model import OnnxModel  # noqa: E402
from freqnet.training.logger import wall_seconds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CARDS = ROOT / "docs" / "models.md"
CARD_ANCHORS = ("IMDN", "CARN-M")  # the published networks each card stands beside, where their file exists


def data_sources(train_folder: str) -> str:
    """Training images per source, from the manifest the preparation script wrote beside the folder."""
    manifest = Path(train_folder).parent / "manifest.csv"
    if not manifest.is_file():
        return "sources in its manifest.csv"
    with open(manifest, newline="") as f:
        counts = Counter(row["source"] for row in csv.DictReader(f) if row["split"] == "train")
    return "training images by source: " + ", ".join(f"{source} {n}" for source, n in counts.most_common())


def subimage_side(train_folder: str) -> str:
    """The sub-images' usual size (the preparation script cuts 256², a GPU lease 384²; edge crops are smaller)."""
    sizes = Counter(image_size(path, warn=False) for path in list_images(train_folder))
    (width, height), _ = sizes.most_common(1)[0]
    return f"{width}²" if width == height else f"{width}×{height}"


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


def benchmark_block(name: str, benchmarks: Path, anchors: Path, sets: list[str]) -> str:
    """The standard sets, this model beside bicubic and the anchors of its scale, and its distance from IMDN."""
    upscaler = Upscaler(name, tile=None)
    scale = upscaler.scale
    peers = {a: OnnxModel(path) for a in CARD_ANCHORS if (path := anchors / f"{a}_x{scale}.onnx").is_file()}
    datasets = standard_datasets(benchmarks, sets, scale)
    rows = evaluate({name: upscaler, **peers}, datasets, scale, baselines=("bicubic",), progress=True)
    by_set = means(rows, lambda r: (r.dataset,))
    lines = [f"<!-- bench:{name} -->", f"Standard test sets, ×{scale} (`python scripts/ship_model.py {name} "
             "--benchmarks ... --anchors ...`; the anchors are the authors' DIV2K-trained checkpoints):", "",
             *method_table(rows, datasets, labels={name: f"**`{name}`**"})]
    if "IMDN" in peers:
        lines += ["", "Distance from IMDN (PSNR-Y): " + ", ".join(
            f"{d.name} {by_set[(d.name,)][name]['psnr'] - by_set[(d.name,)]['IMDN']['psnr']:+.2f} dB" for d in datasets)
            + "."]
    return "\n".join([*lines, f"<!-- /bench:{name} -->"])


def learning_curve(run: Path) -> list[str]:
    """The run's own validation lines (EMA weights, every `data.val.every` iterations) as a two-row table: it says
    whether more iterations would still pay."""
    log = run / "train.log"
    points = re.findall(r"validation at (\d+): all ([\d.]+) dB", log.read_text()) if log.is_file() else []
    if not points:
        return []
    val = yaml.safe_load((run / "config.yaml").read_text())["data"]["val"]
    where = Path(val.get("lr") or val.get("hr") or "?").parts
    label = next((part for part in where if part in ("Set5", "Set14", "BSD100", "Urban100")), "validation set")
    return ["", f"Learning curve ({label} PSNR-Y of the EMA weights during training):", "",
            "| iteration | " + " | ".join(i for i, _ in points) + " |", "|---|" + "---|" * len(points),
            "| PSNR | " + " | ".join(f"{float(p):.2f}" for _, p in points) + " |"]


DESCRIPTIONS = {  # by training recipe: what the model is for, in one sentence
    "bicubic": "Classical super-resolution: inputs that were downscaled cleanly (bicubic), as in the field's benchmarks.",
    "real": "Blind real-photo super-resolution: downscaled photos that also carry JPEG blocks, sensor noise or a soft "
            "lens; the default for photos.",
    "restore": "Restoration at the same size: Gaussian noise (sigma 15-50) and blur (Gaussian or motion).",
}


def openmodeldb_record(name: str, model, config: dict, iterations: int) -> dict:
    """The OpenModelDB fields (the catalogue chaiNNer and ComfyUI users browse), from the run that made the model."""
    train = config["data"]["train"]
    c = model.config
    return {
        "name": f"freqnet {name}", "author": "freqnet developers", "license": "Apache-2.0",
        "architecture": "HybridMoE-FreqNet", "scale": c.scale, "inputChannels": c.in_channels,
        "outputChannels": c.in_channels,
        "size": [f"{config['model']['preset']} preset", f"{c.dim}nf", f"{count_parameters(model) / 1e6:.2f}M params"],
        "tags": ["general", "photo"] + (["restoration"] if train["recipe"] != "bicubic" else ["bicubic"]),
        "description": DESCRIPTIONS.get(train["recipe"], f"Trained on the {train['recipe']} degradation recipe."),
        "trainingIterations": iterations, "trainingBatchSize": train["batch_size"], "trainingHRSize": train["patch_size"],
        "dataset": "freqnet offline photos (scripts/prepare_offline_photos.py; docs/data.md), not DIV2K",
    }


def save_shipped(model, name: str, config: dict, iteration: int, history: str = "") -> Path:
    """The fused weights with their card fields; `history` (the --note) says how earlier stages led to this run,
    which the run's own config cannot (benchmarks/standard.py quotes it)."""
    target = ROOT / "freqnet" / "weights" / f"{name}.safetensors"
    record = openmodeldb_record(name, model, config, iteration)
    freqnet.save_model(model, target, extra={"name": name, "trained_iterations": str(iteration),
                                             "training_config": yaml.safe_dump(config),
                                             "openmodeldb": json.dumps(record),
                                             **({"training_history": history} if history else {})})
    return target


def refresh_header(name: str, history: str = "") -> None:
    """Rewrite a shipped file's header and description tensor in the current format (and its history, when
    given); weights untouched."""
    path = locate(name)
    metadata = read_metadata(path)
    model = freqnet.load_model(path)
    save_shipped(model, name, yaml.safe_load(metadata["training_config"]), int(metadata["trained_iterations"]),
                 history or metadata.get("training_history", ""))


def ship_run(args) -> str:
    """Fuse the run's newest EMA weights (or --weights) into the package and return its card (without the benchmark
    block)."""
    config = yaml.safe_load((args.run / "config.yaml").read_text())
    source = args.weights or locate(args.run)  # else the newest intact EMA weights
    iteration = int(read_metadata(source)["iteration"])
    model = freqnet.fuse(freqnet.load_model(source))
    target = save_shipped(model, args.name, config, iteration, args.note)
    scale = model.config.scale
    start = time.perf_counter()
    rows = evaluate(Upscaler(model, tile="auto"), [Dataset("held-out", args.val, recipe=r) for r in args.recipe], scale)
    scores = means(rows, lambda r: ())[()]
    baseline = "lanczos" if "lanczos" in scores else "input"
    return "\n".join([
        f"<!-- card:{args.name} -->",
        f"## `{args.name}` — ×{scale}, preset `{config['model']['preset']}`"
        + (f" with overrides {config['model']['overrides']}" if config["model"].get("overrides") else ""),
        "",
        f"- File: `freqnet/weights/{args.name}.safetensors` (fused, {target.stat().st_size / 1e6:.1f} MB, "
        f"{count_parameters(model) / 1e6:.3f} M parameters).",
        f"- Data: `{config['data']['train']['hr']}` (`scripts/prepare_offline_photos.py`; "
        f"{data_sources(config['data']['train']['hr'])}; docs/data.md), {subimage_side(config['data']['train']['hr'])} "
        "sub-images; LR by the "
        f"`{config['data']['train']['recipe']}` recipe. Not DIV2K/DF2K.",
        f"- Training: `{config['name']}` config ({config_source(config['name'], args.run)}), {iteration} "
        f"iterations, batch "
        f"{config['data']['train']['batch_size']}, HR patch {config['data']['train']['patch_size']}, "
        f"loss {loss_terms(config)}, EMA weights; wall time {wall_seconds(args.run) / 60:.0f} min on {args.machine}.",
        *([f"- {args.note}"] if args.note else []),
        f"- Held-out photos ({len({r.image for r in rows})}, full size, never trained on), "
        f"PSNR/SSIM on Y, crop {scale}, evaluation {time.perf_counter() - start:.0f} s (tiled):",
        "",
        *(summary(rows, scores, baseline) if len(args.recipe) == 1 else summary_per_degradation(rows, baseline)),
        *learning_curve(args.run),
        "",
        "<details><summary>per image</summary>", "", markdown(rows), "", "</details>",
        f"<!-- /card:{args.name} -->",
    ])


def loss_terms(config: dict) -> str:
    """The run's weighted losses as the card prints them, e.g. `0.25 l1 + 1 l1_y` (the MoE balance term left out)."""
    weights = {k: v for k, v in config["losses"].items() if v and k != "moe_aux"}
    return " + ".join(f"{v:g} {k}" for k, v in weights.items())


def config_source(name: str, run: Path) -> str:
    """Where the card's reader finds the config: the shipped one in configs/, else the run's own resolved copy
    (a fine-tuning stage whose overrides live only there)."""
    shipped = Path("configs") / f"{name}.yaml"
    return f"`{shipped}`" if shipped.is_file() else f"`{run / 'config.yaml'}`, not in the repository"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the shipped name (x2, x3, x4, restore)")
    parser.add_argument("--run", type=Path, default=None, help="training run to ship (else: the shipped model as is)")
    parser.add_argument("--weights", type=Path, default=None,
                        help="the run's EMA weights file to ship instead of its newest intact checkpoint (e.g. one a "
                             "GPU lease brought back without the rest of its checkpoint)")
    parser.add_argument("--val", default="data/photos/val_hr")
    parser.add_argument("--recipe", nargs="+", default=["bicubic"],
                        help="degradations of the held-out photos; each recipe scores every photo once")
    parser.add_argument("--benchmarks", type=Path, default=None, help="standard sets folder (../shared/benchmarks)")
    parser.add_argument("--anchors", type=Path, default=None, help="anchor ONNX folder (../shared/anchors)")
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100", "Urban100"],
                        help="standard sets of the benchmark block (Set5 is what the tests check)")
    parser.add_argument("--note", default="", help="an extra line for the card, also stored in the weights as their "
                        "training history (how earlier stages led to this run)")
    parser.add_argument("--refresh-header", action="store_true",
                        help="only rewrite the shipped file's header (OpenModelDB fields, description tensor; "
                        "with --note, the training history)")
    parser.add_argument("--machine", default="2-core AMD EPYC VM (the project's CI machine class), CPU only, fp32")
    args = parser.parse_args()

    if args.refresh_header:
        refresh_header(args.name, args.note)
        return
    text = CARDS.read_text() if CARDS.is_file() else "# Shipped models\n\n"
    if args.run:
        text = replace_block(text, f"card:{args.name}", ship_run(args))
    if args.benchmarks and args.anchors:
        bench = benchmark_block(args.name, args.benchmarks, args.anchors, args.sets)
        card_end = f"<!-- /card:{args.name} -->"
        if f"<!-- bench:{args.name} -->" not in text and card_end in text:  # first time: inside the card, at its end
            text = text.replace(card_end, f"{bench}\n{card_end}")
        text = replace_block(text, f"bench:{args.name}", bench)
        print(bench)
    CARDS.write_text(text)


if __name__ == "__main__":
    main()
