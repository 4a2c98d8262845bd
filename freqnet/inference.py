"""Upscaling images of any size: seam-free tiling, precision and device handling, and the file-level rules
(alpha, grey, 16-bit, orientation, ICC) behind `freqnet upscale`."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data.image_io import LoadedImage
from .models import fuse, is_fused, load_model

def resolve_model(model) -> torch.nn.Module:
    """A model object, a shipped model's name, or a .safetensors path -> a fused model in eval mode."""
    if isinstance(model, torch.nn.Module):
        return model.eval() if is_fused(model) else fuse(model)
    loaded = load_model(model)
    return loaded if is_fused(loaded) else fuse(loaded)


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def tile_alignment(model: torch.nn.Module) -> int:
    """Tile origins on multiples of this (LR pixels) put every attention window and every down-sampling
    grid exactly where a whole-image forward puts them, so interior pixels are computed identically."""
    config = model.config
    return config.window_size * 2**config.levels


def bytes_per_pixel(model: torch.nn.Module) -> int:
    """Rough peak activation bytes per LR pixel of a forward (fp32): ~16 live full-resolution feature maps,
    the attention logits of a window, and the output image."""
    c = model.config
    heads = max(1, c.dim // c.head_dim)
    return 4 * (16 * c.dim + 2 * heads * c.window_size**2 + 6 * c.in_channels * c.scale**2)


def auto_tile(model: torch.nn.Module, device: torch.device) -> int:
    """The largest aligned tile whose forward fits a memory budget: half the free GPU memory, or on CPU a
    quarter of the available RAM capped at 1 GiB (keeps laptops responsive)."""
    if device.type == "cuda":
        budget = torch.cuda.mem_get_info(device)[0] // 2
    else:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 4 << 30
        budget = min(available // 4, 1 << 30)
    align = tile_alignment(model)
    side = int(math.sqrt(budget / bytes_per_pixel(model)))
    return max(2 * align, min(2048, side // align * align))


def feather(length: int, start_ramp: int, end_ramp: int) -> torch.Tensor:
    """1-D blending weights: linear ramps over the overlaps with neighbours, flat elsewhere (never zero)."""
    weight = torch.ones(length)
    if start_ramp:
        weight[:start_ramp] = torch.linspace(0, 1, start_ramp + 2)[1:-1]
    if end_ramp:
        weight[length - end_ramp:] = torch.linspace(1, 0, end_ramp + 2)[1:-1]
    return weight


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Aligned starts every `step`; the last tile may be shorter and always reaches the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, step))
    return starts + [starts[-1] + step]


def tile_plan(model: torch.nn.Module, h: int, w: int, tile: int, overlap: int) -> tuple[list[int], list[int], int, int]:
    """Aligned tile origins along rows and columns, and the tile side and overlap rounded to the alignment."""
    align = tile_alignment(model)
    tile = max(align, tile // align * align)
    overlap = min(tile // 2, math.ceil(overlap / align) * align)
    return tile_starts(h, tile, tile - overlap), tile_starts(w, tile, tile - overlap), tile, overlap


@torch.no_grad()
def tiled_forward(model: torch.nn.Module, x: torch.Tensor, tile: int, overlap: int,
                  progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """Run `model` on aligned, overlapping tiles of `x` (N, C, H, W) and blend them with feathered weights.

    Tiles start on multiples of the window x U-Net alignment, so each tile computes its interior exactly as
    the whole image would; only the overlap bands differ, and those are cross-faded.
    """
    n, c, h, w = x.shape
    rows, cols, tile, overlap = tile_plan(model, h, w, tile, overlap)
    if len(rows) == 1 and len(cols) == 1:
        return model(x)
    s = model.config.scale
    out = torch.zeros(n, c, h * s, w * s, dtype=torch.float32, device=x.device)
    weight = torch.zeros(1, 1, h * s, w * s, dtype=torch.float32, device=x.device)
    for top in rows:
        for left in cols:
            bottom, right = min(top + tile, h), min(left + tile, w)
            piece = model(x[:, :, top:bottom, left:right]).float()
            wy = feather((bottom - top) * s, overlap * s if top > 0 else 0, overlap * s if bottom < h else 0)
            wx = feather((right - left) * s, overlap * s if left > 0 else 0, overlap * s if right < w else 0)
            mask = (wy[:, None] * wx[None, :]).to(x.device)
            out[:, :, top * s:bottom * s, left * s:right * s] += piece * mask
            weight[:, :, top * s:bottom * s, left * s:right * s] += mask
            if progress:
                progress(1)
    return out / weight


class Upscaler:
    """A loaded model plus how to run it; `__call__` maps float32 (H, W, C) pixels to the upscaled pixels."""

    def __init__(self, model="default", tile: int | str | None = "auto", tile_overlap: int = 32,
                 precision: str = "fp32", device: str = "auto", compile: bool = False) -> None:
        self.device = pick_device(device)
        self.model = resolve_model(model).to(self.device)
        self.scale = self.model.config.scale
        self.tile = auto_tile(self.model, self.device) if tile == "auto" else tile
        self.overlap = tile_overlap
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"precision {precision!r}: allowed fp32, bf16, fp16")
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.forward = torch.compile(self.model) if compile else self.model  # compiled modules expose .config too

    def tiles_for(self, h: int, w: int) -> int:
        if not self.tile:
            return 1
        rows, cols, _, _ = tile_plan(self.model, h, w, self.tile, self.overlap)
        return len(rows) * len(cols)

    @torch.no_grad()
    def run(self, pixels: np.ndarray, progress: Callable[[int], None] | None = None) -> np.ndarray:
        channels = self.model.config.in_channels
        grey = pixels.shape[2] == 1
        x = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None].float()
        if grey and channels == 3:
            x = x.expand(1, 3, *x.shape[-2:])
        elif not grey and channels == 1:
            raise ValueError("this model is single-channel (grey); convert the image to grey first")
        x = x.to(self.device)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            if self.tile:
                y = tiled_forward(self.forward, x, self.tile, self.overlap, progress)
            else:
                y = self.forward(x)
        y = y.float().clamp(0, 1)[0].cpu()
        if grey and channels == 3:
            y = y.mean(dim=0, keepdim=True)
        return y.permute(1, 2, 0).numpy()

    def upscale_loaded(self, image: LoadedImage, progress: Callable[[int], None] | None = None) -> LoadedImage:
        """Colour through the model; alpha upscaled separately (through the model too) and re-attached."""
        pixels = self.run(image.pixels, progress)
        alpha = None if image.alpha is None else self.run(image.alpha[..., None], progress)[..., 0]
        return LoadedImage(pixels, alpha, image.bit_depth, image.icc_profile)


def upscale(image, model="default", tile: int | str | None = "auto", tile_overlap: int = 32,
            precision: str = "fp32", device: str = "auto"):
    """Upscale a PIL image or a numpy array (uint8, uint16 or float in [0, 1]; HxW, HxWx1, HxWx3 or HxWx4).

    Returns the same kind of object: a PIL image for a PIL image, an array of the input's dtype otherwise.
    `model` is a shipped name (`default`, `x2`, `x4`, ...), a .safetensors path, or a model object.
    """
    upscaler = model if isinstance(model, Upscaler) else Upscaler(model, tile, tile_overlap, precision, device)
    if isinstance(image, Image.Image):
        from .data.image_io import from_pil, quantise

        loaded = from_pil(image)
        out = upscaler.upscale_loaded(loaded)
        data = np.concatenate([out.pixels] + ([out.alpha[..., None]] if out.alpha is not None else []), axis=2)
        array = quantise(data, 8)
        return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
    array = np.asarray(image)
    squeeze = array.ndim == 2
    if squeeze:
        array = array[..., None]
    top = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(array.dtype, 1.0)
    pixels = array.astype(np.float32) / top
    alpha = pixels[..., 3] if pixels.shape[2] == 4 else None
    out = upscaler.upscale_loaded(LoadedImage(pixels[..., :3] if alpha is not None else pixels, alpha))
    result = np.concatenate([out.pixels] + ([out.alpha[..., None]] if alpha is not None else []), axis=2)
    if top > 1:
        result = np.round(result * top).astype(array.dtype)
    return result[..., 0] if squeeze else result


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their images, recursively) and glob patterns, in order, without duplicates."""
    import glob

    from .data.image_io import list_images

    found: list[Path] = []
    for item in inputs:
        matches = [Path(p) for p in sorted(glob.glob(item))] if glob.has_magic(item) else [Path(item)]
        if not matches:
            raise FileNotFoundError(f"no file matches {item!r}")
        for path in matches:
            if path.is_dir():
                found += list_images(path)
            elif path.exists():
                found.append(path)
            else:
                raise FileNotFoundError(f"{path} does not exist")
    unique = []
    for path in found:
        if path.resolve() not in {p.resolve() for p in unique}:
            unique.append(path)
    return unique


def output_paths(inputs: list[Path], out: Path, suffix: str) -> list[Path]:
    """One input and an image-file OUT -> OUT itself; otherwise OUT is a folder and outputs keep the stems."""
    from .data.image_io import IMAGE_EXTENSIONS

    if len(inputs) == 1 and out.suffix.lower() in IMAGE_EXTENSIONS and not out.is_dir():
        return [out]
    return [out / f"{path.stem}{suffix}.png" for path in inputs]


def upscale_files(inputs: list[str], out: str | Path, upscaler: Upscaler, suffix: str = "",
                  overwrite: bool = False, show_progress: bool = True) -> dict[str, list]:
    """Upscale every input to its output path. Never writes over an input; skips existing outputs unless
    `overwrite`; a file that cannot be read is reported and skipped. Returns done/skipped/failed lists."""
    from .data.image_io import UnreadableImage, read_image, write_image

    paths = expand_inputs(inputs)
    targets = output_paths(paths, Path(out), suffix)
    input_set = {p.resolve() for p in paths}
    summary: dict[str, list] = {"done": [], "skipped": [], "failed": []}
    bar = None
    if show_progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(paths), unit="file", dynamic_ncols=True)
        except ImportError:
            pass
    for source, target in zip(paths, targets):
        if target.resolve() in input_set:
            summary["failed"].append((source, f"output {target} would overwrite an input"))
        elif target.exists() and not overwrite:
            summary["skipped"].append((source, f"{target} exists (use --overwrite)"))
        else:
            try:
                image = read_image(source)
                tiles = upscaler.tiles_for(*image.pixels.shape[:2]) * (2 if image.alpha is not None else 1)
                tile_bar = None
                if bar is not None and tiles > 1:
                    from tqdm import tqdm

                    tile_bar = tqdm(total=tiles, unit="tile", leave=False, desc=source.name, dynamic_ncols=True)
                result = upscaler.upscale_loaded(image, tile_bar.update if tile_bar else None)
                if tile_bar is not None:
                    tile_bar.close()
                target.parent.mkdir(parents=True, exist_ok=True)
                write_image(target, result)
                summary["done"].append((source, target))
            except UnreadableImage as error:
                summary["failed"].append((source, str(error)))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return summary
