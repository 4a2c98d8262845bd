"""File-level helpers behind `freqnet degrade`: degrade one image K times, write PNGs, parameters and a sheet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .image_io import LoadedImage, read_rgb, write_image
from .recipes import Degrader, modcrop


def contact_sheet(hr: np.ndarray, lrs: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """HR on the left, then each LR enlarged (nearest) to the HR size, side by side on a white background."""
    h, w = hr.shape[:2]
    tiles = [hr]
    for lr in lrs:
        ry, rx = h // lr.shape[0], w // lr.shape[1]
        tiles.append(np.repeat(np.repeat(lr, ry, axis=0), rx, axis=1)[:h, :w])
    sheet = np.ones((h, len(tiles) * (w + gap) - gap, 3), dtype=np.float32)
    for i, tile in enumerate(tiles):
        sheet[:, i * (w + gap):i * (w + gap) + tile.shape[1]] = tile
    return sheet


def degrade_file(input_path: str | Path, recipe: str, scale: int, seed: int, count: int, out_dir: str | Path,
                 sheet: str | Path | None = None) -> list[Path]:
    """Write `count` degraded versions of one image (and `params.json`); sample k uses RNG [seed, k]."""
    input_path, out_dir = Path(input_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hr = modcrop(read_rgb(input_path), scale)
    degrader = Degrader(recipe, scale)
    written, records, lrs = [], {}, []
    for k in range(count):
        lr, info = degrader(hr, np.random.default_rng([seed, k]))
        path = out_dir / f"{input_path.stem}_{degrader.name}_x{scale}_{k:03d}.png"
        write_image(path, LoadedImage(lr))
        written.append(path)
        records[path.name] = info
        lrs.append(lr)
    (out_dir / "params.json").write_text(json.dumps(
        {"input": str(input_path), "recipe": degrader.name, "scale": scale, "seed": seed, "samples": records}, indent=1))
    if sheet:
        write_image(sheet, LoadedImage(contact_sheet(hr, lrs)))
    return written
