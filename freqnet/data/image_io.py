"""Reading and writing images without losing what users care about: bit depth, alpha, grey, orientation, ICC.

Everything in between is float32 HWC in [0, 1]. Pillow reads 8-bit and 16-bit grey; 16-bit colour PNGs (which
Pillow truncates to 8 bits) go through pypng.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class UnreadableImage(ValueError):
    """A file that is not an image we can decode; the message names the file and the reason."""


@dataclass
class LoadedImage:
    pixels: np.ndarray  # float32 (H, W, C) in [0, 1], C = 1 (grey) or 3 (RGB)
    alpha: np.ndarray | None = None  # float32 (H, W) in [0, 1]
    bit_depth: int = 8
    icc_profile: bytes | None = None
    info: dict = field(default_factory=dict)

    @property
    def grey(self) -> bool:
        return self.pixels.shape[2] == 1


def png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) of a PNG file, or None if it is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return head[24], head[25]


def read_png16(path: Path) -> LoadedImage:
    import png  # pypng: Pillow cannot hold 16-bit colour

    width, height, rows, meta = png.Reader(filename=str(path)).asDirect()
    planes = meta["planes"]
    data = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, planes)
    data = data.astype(np.float32) / 65535.0
    has_alpha = meta.get("alpha", False)
    colour = data[..., : planes - 1] if has_alpha else data
    alpha = data[..., -1] if has_alpha else None
    return LoadedImage(colour, alpha, 16)


def read_image(path: str | Path) -> LoadedImage:
    """Decode any supported image; raises UnreadableImage (naming the file) for anything else."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UnreadableImage(f"{path}: empty file")
        header = png_header(path)
        if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
            return read_png16(path)
        with Image.open(path) as image:
            image.load()
            icc = image.info.get("icc_profile")
            image = ImageOps.exif_transpose(image)
            return from_pil(image, icc)
    except UnreadableImage:
        raise
    except Exception as error:  # Pillow and pypng raise many types for bad data
        raise UnreadableImage(f"{path}: cannot decode image ({type(error).__name__}: {error})") from error


def from_pil(image: Image.Image, icc: bytes | None = None) -> LoadedImage:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        data = np.asarray(image).astype(np.float32)
        scale = 65535.0 if mode != "I" or data.max() > 255 else 255.0
        return LoadedImage((data / scale)[..., None].clip(0, 1), None, 16 if scale > 255 else 8, icc)
    if mode == "F":
        return LoadedImage(np.asarray(image, dtype=np.float32)[..., None].clip(0, 1), None, 32, icc)
    alpha = None
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA" if mode != "LA" else "LA")
        alpha = np.asarray(rgba, dtype=np.float32)[..., -1] / 255.0
        image = rgba.convert("L" if mode == "LA" else "RGB")
    elif mode not in ("L", "RGB"):
        image = image.convert("L" if mode in ("1",) else "RGB")
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return LoadedImage(pixels, alpha, 8, icc)


def read_rgb(path: str | Path) -> np.ndarray:
    """Pixels as float32 RGB (H, W, 3): grey is replicated, alpha dropped. For datasets."""
    pixels = read_image(path).pixels
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def quantise(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    top = 65535 if bit_depth == 16 else 255
    return np.round(np.clip(pixels, 0.0, 1.0) * top).astype(np.uint16 if bit_depth == 16 else np.uint8)


def write_png16(path: Path, pixels: np.ndarray) -> None:
    import png

    h, w, c = pixels.shape
    writer = png.Writer(w, h, greyscale=c in (1, 2), alpha=c in (2, 4), bitdepth=16)
    with open(path, "wb") as f:
        writer.write(f, pixels.reshape(h, w * c).tolist())


def write_image(path: str | Path, image: LoadedImage) -> None:
    """Write with the format from the extension; 16-bit survives in PNG and TIFF (grey), alpha where allowed."""
    path = Path(path)
    suffix = path.suffix.lower()
    channels = [image.pixels] + ([image.alpha[..., None]] if image.alpha is not None else [])
    keeps_alpha = suffix in (".png", ".webp", ".tif", ".tiff")
    data = np.concatenate(channels if keeps_alpha else channels[:1], axis=2)
    if image.bit_depth == 16 and suffix == ".png":
        write_png16(path, quantise(data, 16))
        return
    array = quantise(data, 8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    pil = Image.fromarray(array[..., 0] if mode == "L" else array, mode=mode)
    options = {"icc_profile": image.icc_profile} if image.icc_profile and suffix in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff") else {}
    if suffix in (".jpg", ".jpeg"):
        options["quality"] = 95
    pil.save(path, **options)


BUILTIN_PREFIX = "builtin:"


def resolve_path(path: str | Path) -> Path:
    """`builtin:NAME` names a folder shipped in the package (`builtin:samples`: five small CC0 photos from
    scikit-image's data set); anything else is an ordinary path."""
    text = str(path)
    if text.startswith(BUILTIN_PREFIX):
        return Path(__file__).resolve().parent.parent / "assets" / text[len(BUILTIN_PREFIX):]
    return Path(path)


def list_images(root: str | Path) -> list[Path]:
    """Image files under `root` (recursively), sorted; a file path is returned as is."""
    root = resolve_path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_rgb_or_warn(path: Path) -> np.ndarray | None:
    try:
        return read_rgb(path)
    except UnreadableImage as error:
        warnings.warn(f"skipping {error}", stacklevel=2)
        return None
