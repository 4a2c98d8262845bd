"""Datasets: HR folders degraded on the fly, paired LR/HR folders, fixed validation sets, sub-image extraction.

Every random choice comes from `np.random.default_rng([seed, epoch, index])`, so a sample depends only on
those three numbers: the same under any number of DataLoader workers, and reproducible after a resume.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .image_io import LoadedImage, UnreadableImage, list_images, read_rgb, write_image
from .recipes import Degrader, modcrop


def image_size(path: Path, warn: bool = True) -> tuple[int, int] | None:
    """(width, height) from the header, or None (with a warning naming the file, if `warn`) if it is not an image."""
    try:
        if path.stat().st_size == 0:
            raise UnreadableImage("empty file")
        with Image.open(path) as image:
            return image.size
    except Exception as error:
        if warn:
            warnings.warn(f"skipping {path}: not a readable image ({error})", stacklevel=3)
        return None


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def augment(images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random flip/rotation (one of the 8 dihedral transforms) applied to every aligned image."""
    hflip, vflip, rotate = rng.random(3) < 0.5
    out = []
    for image in images:
        if hflip:
            image = image[:, ::-1]
        if vflip:
            image = image[::-1]
        if rotate:
            image = image.transpose(1, 0, 2)
        out.append(np.ascontiguousarray(image))
    return out


def permute_channels(images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random order of the R, G, B channels for every aligned image: six colourings of each crop.

    A small corpus has few colours of each structure; the luma the benchmarks score is a different weighted sum
    of the channels after a permutation, so each crop also teaches new contrasts (Yoo et al., CVPR 2020, "RGB
    permute"). Bicubic resizing works per channel, so permuting HR before degrading equals permuting LR and HR.
    """
    order = rng.permutation(3)
    return [np.ascontiguousarray(image[..., order]) for image in images]


def pad_to(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    pad = ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0))
    return np.pad(image, pad, mode="reflect" if min(h, w) > 1 else "edge")


class SeededDataset(Dataset):
    """Base: per-sample RNG from (seed, epoch, index); `set_epoch` advances the crops and degradations."""

    def __init__(self, seed: int) -> None:
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])


class HRFolderDataset(SeededDataset):
    """HR images only; LR synthesised per sample by a degradation recipe.

    Images smaller than the patch are reflect-padded (`small="pad"`) or dropped (`small="skip"`), with a
    warning; unreadable files are dropped with a warning naming them. `repeat` lengthens an epoch over a
    small folder without re-listing it.

    `detail_candidates` > 1 spends the samples on the pixels a model can still learn from (SamplingAug's idea):
    each sample draws that many random crops, the first from its own image and the rest from random images, and
    keeps the one that loses the most detail to the downscale (`lost_detail`). Smooth sky and walls, most of a
    photo corpus, are learnt early; 1 is a plain random crop.
    """

    def __init__(self, root: str | Path, scale: int, patch_size: int, recipe: str | dict = "bicubic", seed: int = 0,
                 augment: bool = True, small: str = "pad", repeat: int = 1, cache: bool = True,
                 detail_candidates: int = 1, color_permute: bool = False) -> None:
        super().__init__(seed)
        if patch_size % scale:
            raise ValueError(f"patch_size {patch_size} must be a multiple of scale {scale}")
        if detail_candidates < 1 or (detail_candidates > 1 and scale == 1):
            raise ValueError(f"detail_candidates must be at least 1 (1 at scale 1: no detail is lost), "
                             f"got {detail_candidates}")
        self.scale, self.patch_size, self.augment, self.repeat = scale, patch_size, augment, repeat
        self.detail_candidates, self.color_permute = detail_candidates, color_permute
        self.degrader = Degrader(recipe, scale)
        self.files: list[Path] = []
        for path in list_images(root):
            size = image_size(path)
            if size is None:
                continue
            if min(size) < patch_size:
                if small == "skip":
                    warnings.warn(f"skipping {path}: {size[0]}x{size[1]} is smaller than the {patch_size} patch")
                    continue
                warnings.warn(f"{path}: {size[0]}x{size[1]} is smaller than the {patch_size} patch; reflect-padded")
            self.files.append(path)
        if not self.files:
            raise ValueError(f"no usable images under {root}")
        self.cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.files) * self.repeat

    def load(self, file_index: int) -> np.ndarray | None:
        if self.cache is not None and file_index in self.cache:
            return self.cache[file_index]
        try:
            image = read_rgb(self.files[file_index])
        except UnreadableImage as error:
            warnings.warn(f"skipping {error}")
            return None
        if self.cache is not None:
            self.cache[file_index] = image
        return image

    def readable(self, file_index: int) -> tuple[int, np.ndarray]:
        """The image at `file_index`, or the next readable one if that file turns out corrupt."""
        for attempt in range(len(self.files)):
            index = (file_index + attempt) % len(self.files)
            image = self.load(index)
            if image is not None:
                return index, image
        raise RuntimeError("no readable image left in the dataset")

    def random_crop(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        image = pad_to(image, self.patch_size)
        h, w = image.shape[:2]
        top, left = int(rng.integers(h - self.patch_size + 1)), int(rng.integers(w - self.patch_size + 1))
        return image[top:top + self.patch_size, left:left + self.patch_size]

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self.rng(index)
        file_index, image = self.readable(index % len(self.files))
        hr = self.random_crop(image, rng)
        best = lost_detail(hr, self.scale) if self.detail_candidates > 1 else 0.0
        for _ in range(self.detail_candidates - 1):
            other_index, other = self.readable(int(rng.integers(len(self.files))))
            crop = self.random_crop(other, rng)
            if (score := lost_detail(crop, self.scale)) > best:
                file_index, hr, best = other_index, crop, score
        if self.augment:
            (hr,) = augment([hr], rng)
        if self.color_permute:
            (hr,) = permute_channels([hr], rng)
        lr, info = self.degrader(hr, rng)
        return {"lr": to_tensor(lr), "hr": to_tensor(hr.astype(np.float32)), "label": info["label"],
                "name": self.files[file_index].name}


def lost_detail(patch: np.ndarray, scale: int) -> float:
    """Mean squared luma residual of `patch` against its block-averaged copy at `scale`: the energy above the LR
    Nyquist frequency, i.e. what a super-resolution model has to put back."""
    luma = patch[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    h, w = (luma.shape[0] // scale) * scale, (luma.shape[1] // scale) * scale
    luma = luma[:h, :w]
    blocks = luma.reshape(h // scale, scale, w // scale, scale).mean(axis=(1, 3))
    residual = luma - np.repeat(np.repeat(blocks, scale, axis=0), scale, axis=1)
    return float(np.mean(residual ** 2))


LR_SUFFIX = re.compile(r"([_-]?(x\d|lr|LR|lrx\d|LRx\d))$")


def lr_key(stem: str) -> str:
    """BasicSR-style LR names: `0001x4`, `baby_LR`, `img_x2` all pair with the HR stem."""
    return LR_SUFFIX.sub("", stem)


class PairedFolderDataset(SeededDataset):
    """LR and HR folders matched by file name; every pair's size is checked against the scale at start-up."""

    def __init__(self, lr_root: str | Path, hr_root: str | Path, scale: int, patch_size: int | None = None,
                 seed: int = 0, augment: bool = False, labels: dict[str, str] | None = None,
                 color_permute: bool = False) -> None:
        super().__init__(seed)
        self.scale, self.patch_size, self.augment, self.color_permute = scale, patch_size, augment, color_permute
        self.labels = labels or {}
        hr_files = {p.stem: p for p in list_images(hr_root)}
        lr_files = {lr_key(p.stem): p for p in list_images(lr_root)}
        unmatched = sorted(set(hr_files) ^ set(lr_files))
        if unmatched:
            raise ValueError(f"LR/HR folders do not match: no partner for {unmatched[:10]}"
                             f"{' ...' if len(unmatched) > 10 else ''} (LR {lr_root}, HR {hr_root})")
        self.pairs: list[tuple[Path, Path]] = []
        mismatches = []
        for key in sorted(hr_files):
            hr_size, lr_size = image_size(hr_files[key], warn=False), image_size(lr_files[key], warn=False)
            if hr_size is None or lr_size is None:  # a score or a training set silently missing a pair is wrong
                unreadable = [str(p) for p, size in ((lr_files[key], lr_size), (hr_files[key], hr_size)) if size is None]
                mismatches.append(f"pair {key!r}: cannot read {' and '.join(unreadable)}")
                continue
            expected = (lr_size[0] * scale, lr_size[1] * scale)
            # HR may be up to scale-1 pixels larger (not mod-cropped); it is cropped when read
            if not all(0 <= h - e < scale for h, e in zip(hr_size, expected)):
                mismatches.append(f"{lr_files[key].name} is {lr_size[0]}x{lr_size[1]}, so {hr_files[key].name} "
                                  f"should be {expected[0]}x{expected[1]} at x{scale} but is {hr_size[0]}x{hr_size[1]}")
            else:
                self.pairs.append((lr_files[key], hr_files[key]))
        if mismatches:
            raise ValueError(f"LR/HR pairs unusable (LR {lr_root}, HR {hr_root}): " + "; ".join(mismatches))
        if not self.pairs:  # a missing folder lists no images: say so now, not at the first validation
            raise ValueError(f"no images under LR {lr_root} / HR {hr_root}")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        lr_path, hr_path = self.pairs[index]
        lr, hr = read_rgb(lr_path), modcrop(read_rgb(hr_path), self.scale)
        hr = hr[: lr.shape[0] * self.scale, : lr.shape[1] * self.scale]
        if self.patch_size:
            rng = self.rng(index)
            lp = self.patch_size // self.scale
            lr, hr = pad_to(lr, lp), pad_to(hr, self.patch_size)
            top, left = int(rng.integers(lr.shape[0] - lp + 1)), int(rng.integers(lr.shape[1] - lp + 1))
            s = self.scale
            lr = lr[top:top + lp, left:left + lp]
            hr = hr[top * s:(top + lp) * s, left * s:(left + lp) * s]
            if self.augment:
                lr, hr = augment([lr, hr], rng)
            if self.color_permute:
                lr, hr = permute_channels([lr, hr], rng)
        return {"lr": to_tensor(lr), "hr": to_tensor(hr), "label": self.labels.get(hr_path.name, "paired"),
                "name": hr_path.name}


def build_validation_set(hr_root: str | Path, out_dir: str | Path, recipe: str | dict, scale: int, seed: int = 0,
                         max_side: int | None = None) -> PairedFolderDataset:
    """Degrade every HR image once (seeded) and save LR/HR PNGs plus meta.json; later runs reuse the files,
    so every run is scored on identical inputs. A different recipe, scale, seed or file list rebuilds."""
    out_dir = Path(out_dir)
    files = [p for p in list_images(hr_root) if image_size(p) is not None]
    if not files:
        raise ValueError(f"no usable images under {hr_root}")
    degrader = Degrader(recipe, scale)
    signature = {"recipe": degrader.name, "scale": scale, "seed": seed, "max_side": max_side,
                 "files": [p.name for p in files]}
    meta_path = out_dir / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("signature") == signature:
            return PairedFolderDataset(out_dir / "lr", out_dir / "hr", scale, labels=meta["labels"])
    (out_dir / "lr").mkdir(parents=True, exist_ok=True)
    (out_dir / "hr").mkdir(parents=True, exist_ok=True)
    labels, params = {}, {}
    for index, path in enumerate(files):
        hr = read_rgb(path)
        if max_side and max(hr.shape[:2]) > max_side:  # centre crop keeps validation fast
            top, left = (hr.shape[0] - min(hr.shape[0], max_side)) // 2, (hr.shape[1] - min(hr.shape[1], max_side)) // 2
            hr = hr[top:top + max_side, left:left + max_side]
        hr = modcrop(hr, scale)
        lr, info = degrader(hr, np.random.default_rng([seed, index]))
        name = path.stem + ".png"
        write_image(out_dir / "hr" / name, LoadedImage(hr))
        write_image(out_dir / "lr" / name, LoadedImage(lr))
        labels[name], params[name] = info["label"], info
    meta_path.write_text(json.dumps({"signature": signature, "labels": labels, "params": params}, indent=1))
    return PairedFolderDataset(out_dir / "lr", out_dir / "hr", scale, labels=labels)


def extract_subimages(src: str | Path, dst: str | Path, crop_size: int = 480, step: int = 240,
                      min_remainder: int = 48) -> list[Path]:
    """Cut large HR images into overlapping crops on disk (the anchors' `extract_subimages`): loading a crop
    is much faster than decoding a 2K image for every patch. A strip at the right/bottom edge wider than
    `min_remainder` gets its own crop flush with the border."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for path in list_images(src):
        try:
            image = read_rgb(path)
        except UnreadableImage as error:
            warnings.warn(f"skipping {error}")
            continue
        h, w = image.shape[:2]

        def starts(length: int) -> list[int]:
            if length <= crop_size:
                return [0]
            positions = list(range(0, length - crop_size + 1, step))
            if length - (positions[-1] + crop_size) > min_remainder:
                positions.append(length - crop_size)
            return positions

        index = 0
        for top in starts(h):
            for left in starts(w):
                index += 1
                out = dst / f"{path.stem}_s{index:03d}.png"
                write_image(out, LoadedImage(image[top:top + crop_size, left:left + crop_size]))
                written.append(out)
    return written
