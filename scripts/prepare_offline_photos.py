"""Build a training folder (and a held-out validation folder) from photos that install offline.

Sources (none are the published SR benchmarks; see docs/models.md):
- scikit-image's bundled CC0 photos (pip install scikit-image): astronaut, coffee, chelsea, rocket, motorcycle;
- Debian `mate-backgrounds`: 12 nature photos (JPEG, 1280-2560 px), down-scaled >= 2x with MATLAB bicubic so
  JPEG artefacts vanish from the ground truth;
- Debian `libjxl-testdata`: the lossless flower photo (2268x1512), hdr_room, and three lossless 500x500 photos.

    apt-get install mate-backgrounds libjxl-testdata && pip install scikit-image
    python scripts/prepare_offline_photos.py --out data/photos

writes data/photos/train_hr (whole images), data/photos/train_sub (overlapping 256x256 crops, what training
reads) and data/photos/val_hr (held-out photos, never trained on). Missing sources are skipped with a note.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from freqnet.data import LoadedImage, extract_subimages, imresize, read_rgb, write_image

MATE = Path("/usr/share/backgrounds/mate/nature")
JXL = Path("/usr/share/libjxl-testdata")
HELD_OUT = {"mate_Storm", "mate_LadyBird", "jxl_u76c0g_bliznaca", "jxl_cvo9xd_keong_macan"}


def skimage_photos() -> dict[str, np.ndarray]:
    try:
        from skimage import data
    except ImportError:
        print("scikit-image not installed: skipping its photos")
        return {}
    return {"skimage_astronaut": data.astronaut(), "skimage_coffee": data.coffee(), "skimage_chelsea": data.chelsea(),
            "skimage_rocket": data.rocket(), "skimage_motorcycle": data.stereo_motorcycle()[0]}


def shrink(image: np.ndarray, min_factor: float, max_side: int) -> np.ndarray:
    """Down-scale by at least `min_factor` and until the long side fits `max_side` (MATLAB bicubic)."""
    factor = max(min_factor, max(image.shape[:2]) / max_side)
    if factor <= 1:
        return image
    return np.clip(imresize(image, 1 / factor), 0, 1)


def collect(max_side: int) -> dict[str, np.ndarray]:
    photos = {name: shrink(img.astype(np.float32) / 255, 2.0, max_side) for name, img in skimage_photos().items()}
    if MATE.is_dir():
        for path in sorted(MATE.glob("*.jpg")):
            photos[f"mate_{path.stem}"] = shrink(read_rgb(path), 2.0, max_side)
    else:
        print(f"{MATE} missing: apt-get install mate-backgrounds")
    lossless = [JXL / "jxl/flower/flower.png", JXL / "jxl/hdr_room.png",
                *sorted((JXL / "external/wesaturate/500px").glob("*_srgb8.png"))]
    for path in lossless:
        if path.is_file():
            name = path.stem.replace("_srgb8", "")
            photos[f"jxl_{name}"] = shrink(read_rgb(path), 1.0, max_side)
        else:
            print(f"{path} missing: apt-get install libjxl-testdata")
    return photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/photos"))
    parser.add_argument("--max-side", type=int, default=1024, help="long side of the stored ground truth")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--step", type=int, default=192)
    args = parser.parse_args()
    train_dir, val_dir = args.out / "train_hr", args.out / "val_hr"
    train_dir.mkdir(parents=True, exist_ok=True)
    val_dir.mkdir(parents=True, exist_ok=True)
    photos = collect(args.max_side)
    for name, image in photos.items():
        folder = val_dir if name in HELD_OUT else train_dir
        write_image(folder / f"{name}.png", LoadedImage(image))
    crops = extract_subimages(train_dir, args.out / "train_sub", args.crop, args.step)
    pixels = sum(math.prod(img.shape[:2]) for n, img in photos.items() if n not in HELD_OUT)
    print(f"{len(photos) - len(HELD_OUT & set(photos))} training photos ({pixels / 1e6:.1f} MP) -> {len(crops)} crops "
          f"in {args.out / 'train_sub'}; {len(HELD_OUT & set(photos))} held out in {val_dir}")


if __name__ == "__main__":
    main()
