"""Reading and writing images without losing what users care about: bit depth, alpha, grey, orientation, ICC.

Everything in between is float32 HWC in [0, 1]. Pillow reads 8-bit and 16-bit grey; 16-bit colour PNGs (which
Pillow truncates to 8 bits) go through pypng.
"""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from typing import BinaryIO
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
# Inputs larger than this are refused before decoding (`--max-pixels`): 40 MP is an 8000x5000 photo, whose float
# pixels alone take 0.5 GB; a tiny file can claim a huge size (a 300 KB PNG can decode to many GB).
DEFAULT_MAX_PIXELS = 40_000_000


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


class ImageTooLarge(UnreadableImage):
    """Over the pixel limit: refused from the header, before decoding (a web upload answers 413 for it)."""


def check_size(path: Path, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels and width * height > max_pixels:
        raise ImageTooLarge(f"{path}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the limit of "
                              f"{max_pixels / 1e6:.0f} (--max-pixels; 0 lifts it)")


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode any supported image; raises UnreadableImage (naming the file) for anything else, and for images over
    `max_pixels`, which are checked from the header before anything is decoded."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise UnreadableImage(f"{path}: empty file")
        header = png_header(path)
        if header is not None and header[0] == 16 and header[1] in (2, 4, 6):
            with open(path, "rb") as f:
                head = f.read(24)
            check_size(path, int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), max_pixels)
            return read_png16(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies instead
            with Image.open(path) as image:
                check_size(path, *image.size, max_pixels)
                image.load()
                icc = image.info.get("icc_profile")
                image = ImageOps.exif_transpose(image)
                return from_pil(image, icc)
    except UnreadableImage:
        raise
    except Image.DecompressionBombError as error:
        raise UnreadableImage(f"{path}: refused as a decompression bomb ({error})") from error
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
    if mode == "CMYK":
        return from_pil(cmyk_to_rgb(image, icc))
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


def cmyk_to_rgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK through its embedded profile into sRGB where LittleCMS can; else Pillow's plain conversion. Either way
    the CMYK profile is not carried to the RGB output, where it would make viewers show wrong colours."""
    if icc:
        try:
            import io

            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # not a usable CMYK profile: fall back to the plain conversion
            pass
    return image.convert("RGB")


def read_rgb(path: str | Path) -> np.ndarray:
    """Pixels as float32 RGB (H, W, 3): grey is replicated, alpha dropped. For datasets."""
    pixels = read_image(path).pixels
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def quantise(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    top = 65535 if bit_depth == 16 else 255
    return np.round(np.clip(pixels, 0.0, 1.0) * top).astype(np.uint16 if bit_depth == 16 else np.uint8)



def write_image(path: str | Path, image: LoadedImage) -> None:
    """Write with the format from the extension; 16-bit survives in PNG and TIFF (grey), alpha where allowed.
    Atomic: written under a temporary name in the same folder, then renamed, so no reader (and no rerun that
    skips existing outputs) ever sees a half-written file."""
    path = Path(path)
    with atomic_output(path) as partial:
        encode_image(partial, image, path.suffix.lower())


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary name beside `path` (same extension, so encoders pick the format) renamed onto `path` when the
    block succeeds, and removed when it does not."""
    partial = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class PngStream:
    """A PNG written band by band (IDAT streamed through one zlib stream, every row with the 'Up' filter), so an
    output far larger than memory never has to exist whole. 8/16-bit grey, grey+alpha, RGB or RGBA; ICC kept."""

    COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}

    def __init__(self, file: BinaryIO, width: int, height: int, channels: int, bit_depth: int = 8,
                 icc_profile: bytes | None = None) -> None:
        self.file, self.width, self.height, self.channels, self.bit_depth = file, width, height, channels, bit_depth
        self.rows = 0
        self.previous = np.zeros(width * channels * bit_depth // 8, np.uint8)
        self.compressor = zlib.compressobj(6)
        file.write(b"\x89PNG\r\n\x1a\n")
        self.chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, self.COLOUR_TYPES[channels], 0, 0, 0))
        if icc_profile:
            self.chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc_profile))

    def chunk(self, kind: bytes, data: bytes) -> None:
        self.file.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

    def write(self, band: np.ndarray) -> None:
        """The next rows: uint8 or uint16 (rows, width, channels), matching the header."""
        if band.shape[1:] != (self.width, self.channels):
            raise ValueError(f"PNG band of shape {band.shape}, expected (rows, {self.width}, {self.channels})")
        raw = np.ascontiguousarray(band.astype(">u2" if self.bit_depth == 16 else np.uint8)).view(np.uint8)
        raw = raw.reshape(band.shape[0], -1)
        above = np.concatenate([self.previous[None], raw[:-1]])
        filtered = np.concatenate([np.full((raw.shape[0], 1), 2, np.uint8), raw - above], axis=1)  # 2 = Up
        self.previous = raw[-1].copy()
        self.rows += raw.shape[0]
        compressed = self.compressor.compress(filtered.tobytes())
        if compressed:
            self.chunk(b"IDAT", compressed)

    def close(self) -> None:
        if self.rows != self.height:
            raise ValueError(f"PNG stream got {self.rows} rows, its header says {self.height}")
        self.chunk(b"IDAT", self.compressor.flush())
        self.chunk(b"IEND", b"")


def encode_image(path: Path, image: LoadedImage, suffix: str) -> None:
    channels = [image.pixels] + ([image.alpha[..., None]] if image.alpha is not None else [])
    keeps_alpha = suffix in (".png", ".webp", ".tif", ".tiff")
    data = np.concatenate(channels if keeps_alpha else channels[:1], axis=2)
    if image.bit_depth == 16 and suffix == ".png":  # Pillow cannot write 16-bit colour
        with open(path, "wb") as f:
            png = PngStream(f, data.shape[1], data.shape[0], data.shape[2], 16, image.icc_profile)
            png.write(quantise(data, 16))
            png.close()
        return
    array = quantise(data, 8)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]]
    pil = Image.fromarray(array[..., 0] if mode == "L" else array, mode=mode)
    options = {"icc_profile": image.icc_profile} if image.icc_profile and suffix in (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff") else {}
    if suffix in (".jpg", ".jpeg"):
        options["quality"] = 95
    elif suffix == ".webp":  # Pillow's default is lossy (quality 80): an upscaler's output keeps every pixel
        options["lossless"] = True
    pil.save(path, format=Image.registered_extensions()[suffix], **options)


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
