"""The real-photo table (issue 13): the photo model beside Lanczos and the classical model under each fixed, seeded
evaluation recipe (real_jpeg, real_noise, real_blur, real_mixed) and on clean bicubic input, on the held-out photos
and on B100's HR images (evaluation only), PSNR-Y and LPIPS. Writes the `realworld-xS` block of docs/models.md
(rewritten after each recipe and image set).

    python benchmarks/realworld.py --photo real-x4 --classical x4 --benchmarks ../shared/benchmarks
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, replace_block  # noqa: E402

from freqnet.evaluation import Dataset, evaluate, means  # noqa: E402
from freqnet.inference import Upscaler  # noqa: E402
from freqnet.losses import LPIPS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ("real_jpeg", "real_noise", "real_blur", "real_mixed", "bicubic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="real-x4", help="the real-photo model")
    parser.add_argument("--classical", default="x4", help="the classical (bicubic-trained) model of the same scale")
    parser.add_argument("--held-out", default="data/photos/val_hr")
    parser.add_argument("--benchmarks", type=Path, default=None, help="../shared/benchmarks (its BSD100/HR is used)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--b100-recipes", nargs="+", default=None, help="recipes for B100 (default: --recipes)")
    parser.add_argument("--b100-images", type=int, default=100, help="the first N B100 images (LPIPS costs ~5 s "
                        "per image and method on 2 cores)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "models.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    models = {args.photo: Upscaler(args.photo, tile="auto"), args.classical: Upscaler(args.classical, tile="auto")}
    scale = models[args.photo].scale
    if models[args.classical].scale != scale:
        raise SystemExit(f"{args.classical} is x{models[args.classical].scale}, {args.photo} is x{scale}")
    with tempfile.TemporaryDirectory(prefix="b100-") as links:
        folders = {"held-out photos": args.held_out}
        if args.benchmarks and args.b100_images > 0:  # --b100-images 0: the held-out photos only
            folders["B100"] = str(args.benchmarks / "BSD100" / "HR")
            if args.b100_images < 100:  # a folder of links to the first N, so the evaluation sees only those
                subset = Path(links) / "HR"
                subset.mkdir()
                for path in sorted(Path(folders["B100"]).glob("*.png"))[:args.b100_images]:
                    (subset / path.name).symlink_to(path.resolve())
                folders["B100"] = str(subset)
        datasets = [Dataset(name, folder, recipe=recipe) for name, folder in folders.items()
                    for recipe in (args.b100_recipes or args.recipes if name == "B100" else args.recipes)]
        lpips, start, rows = LPIPS(), time.perf_counter(), []
        for dataset in datasets:  # the doc is rewritten after each, so a stopped run keeps what it measured
            rows += evaluate(models, [dataset], scale, lpips=lpips, baselines=("lanczos",), progress=True)
            write_table(args, scale, rows, time.perf_counter() - start)


def write_table(args: argparse.Namespace, scale: int, rows: list, seconds: float) -> None:
    grouped = means(rows, lambda r: (r.dataset, r.label))
    methods = ["lanczos", args.classical, args.photo]
    tag = f"realworld-x{scale}"
    lines = [f"<!-- {tag} -->",
             f"### Real-photo inputs, ×{scale}: `{args.photo}` beside Lanczos and the classical `{args.classical}`", "",
             f"`python benchmarks/realworld.py --photo {args.photo} --classical {args.classical} --benchmarks ...`; "
             "each recipe degrades every HR image once with a fixed seed (`freqnet/data/recipes.py`): `real_jpeg` "
             "bicubic ×s then JPEG q 30–70; `real_noise` σ 5–15 Gaussian or shot noise of the same strength; "
             "`real_blur` a mild Gaussian lens blur before downscaling; `real_mixed` Real-ESRGAN's second-order draw; "
             "`bicubic` clean input. PSNR on Y (crop = scale) / LPIPS-VGG (lower is better). "
             f"{len({r.image for r in rows if r.dataset == 'held-out photos'})} held-out photos and "
             f"{len({r.image for r in rows if r.dataset == 'B100'})} B100 images; {machine()}; {seconds / 60:.0f} min.",
             "",
             "| images | input | " + " | ".join(f"{m} PSNR / LPIPS" for m in methods)
             + f" | `{args.photo}` − Lanczos (dB) |",
             "|---|---|" + "---|" * (len(methods) + 1)]
    for (dataset, label), scores in grouped.items():
        cells = [f"{scores[m]['psnr']:.2f} / {scores[m]['lpips']:.3f}" for m in methods]
        gain = scores[args.photo]["psnr"] - scores["lanczos"]["psnr"]
        lines.append(f"| {dataset} | {label} | " + " | ".join(cells) + f" | {gain:+.2f} |")
    lines.append(f"<!-- /{tag} -->")
    block = "\n".join(lines)
    print(block, flush=True)
    args.doc.write_text(replace_block(args.doc.read_text(), tag, block))


if __name__ == "__main__":
    main()
