"""Upscaling images of any size: seam-free tiling, precision and device handling, and the file-level rules
(alpha, grey, 16-bit, orientation, ICC) behind `freqnet upscale`."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data.image_io import LoadedImage
from .models import detached_copy, fuse, is_fused, load_model
from .precision import AUTOCAST_DTYPES, resolve_precision


def resolve_model(model) -> torch.nn.Module:
    """A model object, a shipped model's name, or a .safetensors path -> a fused model in eval mode."""
    if isinstance(model, torch.nn.Module):
        return model.eval() if is_fused(model) else fuse(model)
    loaded = load_model(model)
    return loaded if is_fused(loaded) else fuse(loaded)


def pick_device(device: str) -> torch.device:
    """auto, cpu, cuda or cuda:N, checked now: a wrong name or a missing GPU is a one-line error before any work."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if chosen.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported: use auto, cpu, cuda or cuda:N")
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: this PyTorch build has no usable CUDA GPU (use --device cpu)")
        if chosen.index is not None and chosen.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return chosen


def check_tile(model: torch.nn.Module, tile: int | str | None) -> None:
    """Tiles are aligned to the model's window x U-Net grid; a tile that is not is an error, never a silent
    rounding (which can make a run many times slower than asked)."""
    if tile in (None, 0, "auto"):
        return
    align = tile_alignment(model)
    if not isinstance(tile, int) or tile < align or tile % align:
        raise ValueError(f"tile {tile!r}: give 0 (off), 'auto', or a multiple of {align} (this model's alignment), "
                         f"at least {align}")


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
    quarter of the available RAM capped at 512 MiB (keeps laptops responsive: a 12 MP photo at x4 stays under
    2 GB, docs/tiling_memory.md)."""
    if device.type == "cuda":
        budget = torch.cuda.mem_get_info(device)[0] // 2
    else:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 4 << 30
        budget = min(available // 4, 512 << 20)
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
def tiled_bands(model: torch.nn.Module, x: torch.Tensor, tile: int, overlap: int,
                progress: Callable[[int], None] | None = None, forward: Callable | None = None) -> Iterator[torch.Tensor]:
    """Run `model` (through `forward`, default the model) on aligned, overlapping tiles of `x` (N, C, H, W), blend
    them with feathered weights, and yield the output in horizontal bands, top to bottom.

    Tiles start on multiples of the window x U-Net alignment, so each tile computes its interior exactly as the
    whole image would; only the overlap bands differ, and those are cross-faded. A band is final once the next
    row of tiles starts below it, so only one row of tiles and its overlap strip are ever held: the output's
    memory is bounded by the tile, not the image.
    """
    forward = forward or model
    n, c, h, w = x.shape
    rows, cols, tile, overlap = tile_plan(model, h, w, tile, overlap)
    if len(rows) == 1 and len(cols) == 1:
        yield forward(x).float()
        return
    s = model.config.scale

    def ramps(starts: list[int], length: int) -> list[torch.Tensor]:
        return [feather((min(a + tile, length) - a) * s, overlap * s if a > 0 else 0,
                        overlap * s if a + tile < length else 0).to(x.device) for a in starts]

    # Every tile row uses the same columns, so the blend weight of an output pixel is separable: (sum of the row
    # ramps covering its row) x (sum of the column ramps covering its column); two vectors, not an image.
    row_ramps, col_ramps = ramps(rows, h), ramps(cols, w)
    row_weight = torch.zeros(h * s, device=x.device)
    col_weight = torch.zeros(w * s, device=x.device)
    for top, ramp in zip(rows, row_ramps):
        row_weight[top * s: top * s + len(ramp)] += ramp
    for left, ramp in zip(cols, col_ramps):
        col_weight[left * s: left * s + len(ramp)] += ramp
    carry = None  # the previous band's rows that the current one overlaps
    for index, (top, wy) in enumerate(zip(rows, row_ramps)):
        bottom = min(top + tile, h)
        band = torch.zeros(n, c, (bottom - top) * s, w * s, dtype=torch.float32, device=x.device)
        for left, wx in zip(cols, col_ramps):
            right = min(left + tile, w)
            piece = forward(x[:, :, top:bottom, left:right]).float()
            band[:, :, :, left * s:right * s] += piece.mul_(wy[:, None]).mul_(wx[None, :])
            if progress:
                progress(1)
        if carry is not None:
            band[:, :, :carry.shape[2]] += carry
        final = (rows[index + 1] - top) * s if index + 1 < len(rows) else band.shape[2]
        carry = band[:, :, final:].clone()  # a copy, so the rest of the band is freed once used
        yield band[:, :, :final].div_(row_weight[top * s:top * s + final, None]).div_(col_weight)


def tiled_forward(model: torch.nn.Module, x: torch.Tensor, tile: int, overlap: int,
                  progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """`tiled_bands` put together: the whole output at once."""
    return torch.cat(list(tiled_bands(model, x, tile, overlap, progress)), dim=2)


PNG_ROWS = 128  # rows quantised and compressed at a time when streaming a PNG


def self_ensemble(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The mean of `forward` over the input's 8 flips and quarter turns, each output turned back (EDSR's "+",
    BasicSR's self-ensemble): 8 forwards for typically +0.05-0.15 dB. Exact for an equivariant map (bicubic)."""
    total = None
    for turns in range(4):
        for mirror in (False, True):
            t = torch.rot90(x, turns, (2, 3))
            y = forward(t.flip(3) if mirror else t)
            y = torch.rot90(y.flip(3) if mirror else y, -turns, (2, 3)).float()
            total = y if total is None else total + y
    return total / 8


class NonFiniteOutput(ValueError):
    """A model's output had NaN/Inf: writing it would give a black or garbage image with a success status."""


def half_precision_copy(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A copy with its weights cast once, to run under autocast at `dtype`. Autocast alone casts every fp32 weight
    again in every forward, and fp32 parameters in elementwise ops promote activations back to fp32: the `small`
    preset's bf16 forward had 208 casts, 35 this way, with the same output. Autocast still runs its fp32 ops (norms,
    softmax) in fp32, and the frequency split computes in fp32 inside."""
    return detached_copy(model).to(dtype)


class Upscaler:
    """A loaded model plus how to run it; `run` maps float32 (H, W, C) pixels to the upscaled pixels."""

    def __init__(self, model="default", tile: int | str | None = "auto", tile_overlap: int = 32,
                 precision: str = "fp32", device: str = "auto", compile: bool = False, detail: float = 1.0,
                 ensemble: bool = False) -> None:
        self.device = pick_device(device)
        self.ensemble = ensemble
        self.name = getattr(model, "name", None) or (type(model).__name__ if isinstance(model, torch.nn.Module) else str(model))
        self.precision = resolve_precision(precision, self.device)
        self.dtype = AUTOCAST_DTYPES[self.precision]
        self.model = resolve_model(model).to(self.device)
        if detail != 1.0:  # on a copy: the caller's module keeps its own gain
            self.model = detached_copy(self.model)
            self.model.set_detail(detail)
        if self.dtype is not None:
            self.model = half_precision_copy(self.model, self.dtype)
        check_tile(self.model, tile)
        self.scale = self.model.config.scale
        self.tile = auto_tile(self.model, self.device) if tile == "auto" else tile
        self.overlap = tile_overlap
        # On CUDA, "reduce-overhead" replays each tile shape as a CUDA graph: tiles share one size, so one capture.
        self.cuda_graphs = compile and self.device.type == "cuda"
        self.forward = torch.compile(self.model, mode="reduce-overhead" if self.cuda_graphs else None) if compile \
            else self.model

    def tiles_for(self, h: int, w: int) -> int:
        if not self.tile:
            return 1
        rows, cols, _, _ = tile_plan(self.model, h, w, self.tile, self.overlap)
        return len(rows) * len(cols)

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """The model's output for one tile or image: one forward, or the mean of eight with `ensemble`."""
        if self.ensemble:
            return self_ensemble(self.infer_once, x)
        return self.infer_once(x)

    def infer_once(self, x: torch.Tensor) -> torch.Tensor:
        """One forward at the chosen precision (autocast entered per call: bands are generators, and an autocast
        held open across their yields would leak into the caller)."""
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            out = self.forward(x)
        return out.clone() if self.cuda_graphs else out  # the next replay reuses a graph's output memory

    @torch.no_grad()
    def bands(self, pixels: np.ndarray, progress: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
        """The upscaled float32 (H, W, C) pixels in horizontal bands, top to bottom (one band when untiled)."""
        channels = self.model.config.in_channels
        grey = pixels.shape[2] == 1
        x = torch.from_numpy(np.asarray(pixels, np.float32)).permute(2, 0, 1)[None]  # a view: tiles are copied one by one
        if grey and channels == 3:
            x = x.expand(1, 3, *x.shape[-2:])
        elif not grey and channels == 1:
            raise ValueError("this model is single-channel (grey); convert the image to grey first")
        x = x.to(self.device)
        outputs = (tiled_bands(self.model, x, self.tile, self.overlap, progress, self.infer) if self.tile
                   else iter([self.infer(x).float()]))
        for y in outputs:
            if not torch.isfinite(y.sum()):  # NaN and Inf reach the sum; no band-sized temporary
                raise NonFiniteOutput(f"model {self.name} produced NaN or infinite values (diverged or corrupt "
                                      "weights?); nothing was written")
            y = y.clamp_(0, 1)[0].cpu()
            if grey and channels == 3:
                y = y.mean(dim=0, keepdim=True)
            yield y.permute(1, 2, 0).numpy()

    def run(self, pixels: np.ndarray, progress: Callable[[int], None] | None = None) -> np.ndarray:
        """float32 (H, W, C) in [0, 1] -> the upscaled (sH, sW, C), clamped to [0, 1]."""
        return np.concatenate(list(self.bands(pixels, progress)), axis=0)

    def upscale_loaded(self, image: LoadedImage, progress: Callable[[int], None] | None = None) -> LoadedImage:
        """Colour through the model; alpha upscaled separately (through the model too) and re-attached."""
        pixels = self.run(image.pixels, progress)
        alpha = None if image.alpha is None else self.run(image.alpha[..., None], progress)[..., 0]
        return LoadedImage(pixels, alpha, image.bit_depth, image.icc_profile)

    def upscale_to_png(self, image: LoadedImage, path: str | Path,
                       progress: Callable[[int], None] | None = None) -> None:
        """Like `upscale_loaded` + `write_image` for PNG, but band by band into the file: peak memory follows the
        tile, not the image (a 12 MP photo at x4 is a 192 MP output)."""
        from .data.image_io import PngStream, atomic_output, quantise

        h, w = image.pixels.shape[:2]
        colour = self.bands(image.pixels, progress)
        alpha = None if image.alpha is None else self.bands(image.alpha[..., None], progress)
        channels = image.pixels.shape[2] + (alpha is not None)
        bits = 16 if image.bit_depth == 16 else 8
        with atomic_output(Path(path)) as partial, open(partial, "wb") as f:
            png = PngStream(f, w * self.scale, h * self.scale, channels, bits, image.icc_profile)
            for band in colour:
                if alpha is not None:
                    band = np.concatenate([band, next(alpha)], axis=2)
                for start in range(0, band.shape[0], PNG_ROWS):  # small temporaries, whatever the band's size
                    png.write(quantise(band[start:start + PNG_ROWS], bits))
            png.close()


def upscale(image, model="default", tile: int | str | None = "auto", tile_overlap: int = 32,
            precision: str = "fp32", device: str = "auto", detail: float = 1.0):
    """Upscale a PIL image or a numpy array (uint8, uint16 or float in [0, 1]; HxW, HxWx1, HxWx3 or HxWx4).

    Returns the same kind of object: a PIL image for a PIL image, an array of the input's dtype otherwise.
    `model` is a shipped name (`default`, `x2`, `x4`, ...), a .safetensors path, or a model object; `detail` is the
    HF gain (`HybridMoEFreqNet.set_detail`).
    """
    upscaler = (model if isinstance(model, Upscaler)
                else Upscaler(model, tile, tile_overlap, precision, device, detail=detail))
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


def expand_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """Files, folders (their images, recursively) and glob patterns, in order, without duplicates; each with the
    path its output keeps: relative to its folder argument (so the output tree mirrors the input tree), else the
    bare file name."""
    import glob

    from .data.image_io import list_images

    found: list[tuple[Path, Path]] = []
    for item in inputs:
        matches = [Path(p) for p in sorted(glob.glob(item))] if glob.has_magic(item) else [Path(item)]
        if not matches:
            raise FileNotFoundError(f"no file matches {item!r}")
        for path in matches:
            if path.is_dir():
                images = list_images(path)
                if not images:
                    raise FileNotFoundError(f"no images in folder {path}")
                found += [(image, image.relative_to(path)) for image in images]
            elif path.exists():
                found.append((path, Path(path.name)))
            else:
                raise FileNotFoundError(f"{path} does not exist")
    unique, seen = [], set()
    for path, relative in found:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append((path, relative))
    return unique


def output_paths(inputs: list[tuple[Path, Path]], out: str | Path, suffix: str) -> list[Path]:
    """One input and an OUT with an image extension -> OUT itself; otherwise OUT is a folder and each output keeps
    its input's relative path and stem, as PNG. Inputs that would still collide (`a.bmp`, `a.tif`) keep their
    extension in the name (`a_bmp.png`, `a_tif.png`): no output is ever lost to another."""
    from .data.image_io import IMAGE_EXTENSIONS

    says_folder = str(out).endswith(("/", os.sep))
    out = Path(out)
    if len(inputs) == 1 and out.suffix and not out.is_dir() and not says_folder:
        if out.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(f"output {out}: {out.suffix} is not a format we write ({', '.join(IMAGE_EXTENSIONS)})")
        return [out]
    if len(inputs) == 1 and not out.is_dir() and not says_folder:
        raise ValueError(f"output {out} has no image extension: give e.g. {out}.png, or {out}/ for a folder")
    plain = [out / relative.parent / f"{relative.stem}{suffix}.png" for _, relative in inputs]
    counts: dict[Path, int] = {}
    for target in plain:
        counts[target] = counts.get(target, 0) + 1
    return [target.with_name(f"{relative.stem}_{relative.suffix.lstrip('.').lower()}{suffix}.png")
            if counts[target] > 1 else target for target, (_, relative) in zip(plain, inputs)]


def check_writable(targets: list[Path]) -> None:
    """Before any compute: every output folder can be made and written (a read-only folder or a file in the way
    is an error now, not after minutes of upscaling)."""
    for folder in sorted({target.parent for target in targets}):
        existing = folder
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise ValueError(f"cannot write outputs under {folder}: {existing} is a file, not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ValueError(f"cannot write outputs under {folder}: {existing} is not writable")


def upscale_files(inputs: list[str], out: str | Path, upscaler: Upscaler, suffix: str = "",
                  overwrite: bool = False, show_progress: bool = True, max_pixels: int | None = None) -> dict[str, list]:
    """Upscale every input to its output path. Never writes over an input; skips existing outputs unless
    `overwrite`; a file that cannot be read or processed is reported and the batch goes on. Outputs are written
    to a temporary name and renamed, so an interrupted run never leaves a truncated file that a rerun would skip.
    Returns done/skipped/failed lists."""
    from .data.image_io import read_image, write_image

    pairs = expand_inputs(inputs)
    paths = [path for path, _ in pairs]
    targets = output_paths(pairs, out, suffix)
    check_writable(targets)
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
                image = read_image(source) if max_pixels is None else read_image(source, max_pixels)
                tiles = upscaler.tiles_for(*image.pixels.shape[:2]) * (2 if image.alpha is not None else 1)
                tile_bar = None
                if bar is not None and tiles > 1:
                    from tqdm import tqdm

                    tile_bar = tqdm(total=tiles, unit="tile", leave=False, desc=source.name, dynamic_ncols=True)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    if target.suffix.lower() == ".png":  # the default output: streamed, memory bounded by the tile
                        upscaler.upscale_to_png(image, target, tile_bar.update if tile_bar else None)
                    else:
                        write_image(target, upscaler.upscale_loaded(image, tile_bar.update if tile_bar else None))
                finally:
                    if tile_bar is not None:
                        tile_bar.close()
                summary["done"].append((source, target))
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as error:  # one bad file must not cost the rest of the batch its outputs
                summary["failed"].append((source, str(error) or type(error).__name__))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return summary
