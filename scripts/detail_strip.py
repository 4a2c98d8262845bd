"""The docs' strip of the detail control: one LR crop upscaled at detail 0 / 0.5 / 1 / 1.5, side by side.

    python scripts/detail_strip.py --model real-x4 --image data/photos/val_hr/jxl_cvo9xd_keong_macan.png \
        --recipe real_jpeg --out docs/detail_strip.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from freqnet.data import Degrader, modcrop, read_rgb
from freqnet.data.image_io import quantise
from freqnet.inference import Upscaler

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="real-x4")
    parser.add_argument("--image", type=Path, required=True, help="an HR photo (never a training image)")
    parser.add_argument("--recipe", default="real_jpeg", help="how the LR input is made from it")
    parser.add_argument("--crop", type=int, nargs=3, default=None, metavar=("TOP", "LEFT", "SIDE"),
                        help="LR crop (default: the centre, 64 pixels or the whole image)")
    parser.add_argument("--gains", type=float, nargs="+", default=(0.0, 0.5, 1.0, 1.5))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "detail_strip.png")
    args = parser.parse_args()
    scale = Upscaler(args.model, tile=None).scale
    hr = modcrop(read_rgb(args.image), scale)
    lr, _ = Degrader(args.recipe, scale)(hr, np.random.default_rng(0))
    side = min(64, *lr.shape[:2])
    top, left, side = args.crop or ((lr.shape[0] - side) // 2, (lr.shape[1] - side) // 2, side)
    if top + side > lr.shape[0] or left + side > lr.shape[1]:
        raise SystemExit(f"crop {top},{left},{side} leaves the {lr.shape[1]}x{lr.shape[0]} LR image")
    crop = lr[top:top + side, left:left + side]
    panels = [("input (nearest)", np.repeat(np.repeat(crop, scale, 0), scale, 1))]
    panels += [(f"detail {gain:g}", Upscaler(args.model, tile=None, detail=gain).run(crop)) for gain in args.gains]
    size, label_height = side * scale, 22
    strip = Image.new("RGB", (len(panels) * (size + 4) - 4, size + label_height), "white")
    draw = ImageDraw.Draw(strip)
    for index, (label, pixels) in enumerate(panels):
        x = index * (size + 4)
        strip.paste(Image.fromarray(quantise(pixels, 8)), (x, label_height))
        draw.text((x + 4, 4), label, fill="black")
    strip.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
