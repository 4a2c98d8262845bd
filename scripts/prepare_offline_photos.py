"""Build a training folder (and a held-out validation folder) from photos that install offline.

Sources (none are the published SR benchmarks; see docs/models.md):
- scikit-image's bundled CC0 photos (pip install scikit-image): astronaut, coffee, chelsea, rocket, motorcycle;
- Debian `mate-backgrounds`: 12 nature photos (JPEG, 1280-2560 px), down-scaled >= 2x with MATLAB bicubic so
  JPEG artefacts vanish from the ground truth;
- Debian `libjxl-testdata`: the lossless flower photo (2268x1512), hdr_room, and three lossless 500x500 photos;
- Debian `lomiri-wallpapers-16.04` / `-20.04` (Ubuntu community photo contests): the 15 photographs among them
  (JPEG, 1365-6028 px; the four renders are left out), down-scaled >= 2x like the mate photos;
- T91, the classic 91-image SR training set (`--t91 FOLDER`; this project's machines have it in ../shared/train).

    apt-get install mate-backgrounds libjxl-testdata lomiri-wallpapers-16.04 lomiri-wallpapers-20.04
    pip install scikit-image
    python scripts/prepare_offline_photos.py --out data/photos --t91 ../shared/train/T91

writes data/photos/train_hr (whole images; each large photo also at 0.6x, a second scale of texture as the
anchors' multi-scale DIV2K preparation makes), data/photos/train_sub (overlapping 256x256 crops, what training
reads), data/photos/val_hr (held-out photos, never trained on) and data/photos/manifest.csv (every image: source,
licence, size). Missing sources are skipped with a note. Never the standard test sets (Set5, Set14, B100,
Urban100) and never the packages reserved for independent checks (plasma-workspace-wallpapers, opencv-doc).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from freqnet.data import LoadedImage, extract_subimages, imresize, read_rgb, write_image

MATE = Path("/usr/share/backgrounds/mate/nature")
JXL = Path("/usr/share/libjxl-testdata")
T91_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "train" / "T91"
LOMIRI = Path("/usr/share/backgrounds")
LICENCES = {"skimage": "CC0 (scikit-image data)", "mate": "GPL-2+ (Debian mate-backgrounds)",
            "jxl": "CC0 / Apache-2.0 (Debian libjxl-testdata)", "t91": "research use (Yang et al. 2010: the T91 set)"}
# The photographs of lomiri-wallpapers-16.04/-20.04 and each one's licence (debian/copyright); the packages'
# other images (Fossa, Infinite-Sea, Painting-Colors, umang) are renders and stay out.
LOMIRI_PHOTOS = {
    "Bridge_by_Sander_Klootwijk": "CC-BY-SA-4.0", "Dragonfly_by_Bolly": "CC-BY-SA-4.0",
    "Kleiber_by_Lukas_Baubkus": "CC-BY-SA-3.0", "Picture_0B_by_freespace": "CC-BY-4.0",
    "Picture_1A_by_freespace": "CC-BY-4.0", "Wine_by_Jakkub_Mede": "CC-BY-4.0",
    "aitzgorri_by_Aitzol_Berasategi": "CC-BY-4.0", "analogpattern_by_Peter_Nerlich": "CC-BY-SA-4.0",
    "free_by_Peter_Nerlich": "CC-BY-SA-4.0", "friends_by_Aitzol_Berasategi": "CC-BY-4.0",
    "greentock_by_Peter_Nerlich": "CC-BY-SA-4.0", "life_by_Aitzol_Berasategi": "CC-BY-4.0",
    "picosdeeuropa_by_Aitzol_Berasategi": "CC-BY-4.0", "seeding_by_Clements_Engelhardt": "CC0-1.0",
    "sunset_by_Aitzol_Berasategi": "CC-BY-4.0",
}
SECOND_SCALE = 0.6  # large photos are also stored at this size: more texture scales from the same few photos
HELD_OUT = {"mate_Storm", "mate_LadyBird", "jxl_u76c0g_bliznaca", "jxl_cvo9xd_keong_macan"}


class Photo(NamedTuple):
    """A stored ground-truth image and the licence the manifest records for it."""

    image: np.ndarray
    licence: str


def skimage_photos() -> dict[str, Photo]:
    try:
        from skimage import data
    except ImportError:
        print("scikit-image not installed: skipping its photos")
        return {}
    images = {"astronaut": data.astronaut(), "coffee": data.coffee(), "chelsea": data.chelsea(),
              "rocket": data.rocket(), "motorcycle": data.stereo_motorcycle()[0]}
    return {f"skimage_{name}": Photo(img.astype(np.float32) / 255, LICENCES["skimage"]) for name, img in images.items()}


def shrink(image: np.ndarray, min_factor: float, max_side: int) -> np.ndarray:
    """Down-scale by at least `min_factor` and until the long side fits `max_side` (MATLAB bicubic)."""
    factor = max(min_factor, max(image.shape[:2]) / max_side)
    if factor <= 1:
        return image
    return np.clip(imresize(image, 1 / factor), 0, 1)


def t91_photos(folder: Path) -> dict[str, Photo]:
    """T91 as it is: small (about 100-250 px) crops, already free of compression artefacts."""
    if not folder.is_dir():
        print(f"{folder} missing: pass --t91 FOLDER to add the T91 set")
        return {}
    return {f"t91_{path.stem}": Photo(read_rgb(path), LICENCES["t91"]) for path in sorted(folder.glob("*.png"))}


def collect(max_side: int) -> dict[str, Photo]:
    photos = {name: Photo(shrink(photo.image, 2.0, max_side), photo.licence) for name, photo in skimage_photos().items()}
    if MATE.is_dir():
        for path in sorted(MATE.glob("*.jpg")):
            photos[f"mate_{path.stem}"] = Photo(shrink(read_rgb(path), 2.0, max_side), LICENCES["mate"])
    else:
        print(f"{MATE} missing: apt-get install mate-backgrounds")
    missing = [stem for stem in LOMIRI_PHOTOS if not (LOMIRI / f"{stem}.jpg").is_file()]
    if missing:
        print(f"{len(missing)} lomiri photos missing: apt-get install lomiri-wallpapers-16.04 lomiri-wallpapers-20.04")
    for stem in sorted(set(LOMIRI_PHOTOS) - set(missing)):
        photos[f"lomiri_{stem}"] = Photo(shrink(read_rgb(LOMIRI / f"{stem}.jpg"), 2.0, max_side),
                                         f"{LOMIRI_PHOTOS[stem]} (Debian lomiri-wallpapers)")
    lossless = [JXL / "jxl/flower/flower.png", JXL / "jxl/hdr_room.png",
                *sorted((JXL / "external/wesaturate/500px").glob("*_srgb8.png"))]
    for path in lossless:
        if path.is_file():
            name = path.stem.replace("_srgb8", "")
            photos[f"jxl_{name}"] = Photo(shrink(read_rgb(path), 1.0, max_side), LICENCES["jxl"])
        else:
            print(f"{path} missing: apt-get install libjxl-testdata")
    return photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/photos"))
    parser.add_argument("--max-side", type=int, default=1024, help="long side of the stored ground truth")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--step", type=int, default=192)
    parser.add_argument("--t91", type=Path, default=T91_DEFAULT, help="folder of the T91 PNGs (skipped if absent)")
    args = parser.parse_args()
    train_dir, val_dir = args.out / "train_hr", args.out / "val_hr"
    train_dir.mkdir(parents=True, exist_ok=True)
    val_dir.mkdir(parents=True, exist_ok=True)
    photos = collect(args.max_side)
    for name in sorted(set(photos) - HELD_OUT):
        image, licence = photos[name]
        if min(image.shape[:2]) * SECOND_SCALE >= args.crop:
            photos[f"{name}_x{SECOND_SCALE}"] = Photo(np.clip(imresize(image, SECOND_SCALE), 0, 1), licence)
    photos.update(t91_photos(args.t91))
    with open(args.out / "manifest.csv", "w", newline="") as f:
        manifest = csv.writer(f)
        manifest.writerow(["name", "split", "source", "licence", "width", "height"])
        for name, (image, licence) in photos.items():
            held_out = name in HELD_OUT
            write_image((val_dir if held_out else train_dir) / f"{name}.png", LoadedImage(image))
            manifest.writerow([name, "val" if held_out else "train", name.split("_")[0], licence,
                               image.shape[1], image.shape[0]])
    crops = extract_subimages(train_dir, args.out / "train_sub", args.crop, args.step)
    pixels = sum(math.prod(photo.image.shape[:2]) for name, photo in photos.items() if name not in HELD_OUT)
    print(f"{len(photos) - len(HELD_OUT & set(photos))} training images ({pixels / 1e6:.1f} MP) -> {len(crops)} crops "
          f"in {args.out / 'train_sub'}; {len(HELD_OUT & set(photos))} held out in {val_dir}; manifest {args.out / 'manifest.csv'}")


if __name__ == "__main__":
    main()
