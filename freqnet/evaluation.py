"""`freqnet eval`: score a model on paired folders or on HR folders degraded by a recipe, in the field's
convention (see metrics.py), beside bicubic and Lanczos, per image, per degradation type and per dataset."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import metrics
from .data import Degrader, PairedFolderDataset, list_images, modcrop, read_rgb
from .data.resize import imresize


@dataclass
class Sample:
    name: str
    label: str
    lr: np.ndarray  # float32 (H, W, 3)
    hr: np.ndarray


@dataclass
class Dataset:
    name: str
    hr: str
    lr: str | None = None
    recipe: str | None = None


@dataclass
class Row:
    dataset: str
    image: str
    label: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> metric -> value


def samples(dataset: Dataset, scale: int, seed: int = 0) -> Iterator[Sample]:
    if dataset.lr:
        paired = PairedFolderDataset(dataset.lr, dataset.hr, scale)
        for index in range(len(paired)):
            item = paired[index]
            yield Sample(item["name"], "paired", item["lr"].permute(1, 2, 0).numpy(), item["hr"].permute(1, 2, 0).numpy())
        return
    degrader = Degrader(dataset.recipe or "bicubic", scale)
    for index, path in enumerate(list_images(dataset.hr)):
        hr = modcrop(read_rgb(path), scale)
        lr, info = degrader(hr, np.random.default_rng([seed, index]))
        yield Sample(path.name, info["label"], lr, hr)


def bicubic_up(lr: np.ndarray, scale: int) -> np.ndarray:
    return np.clip(imresize(lr, float(scale)), 0, 1) if scale > 1 else lr


def lanczos_up(lr: np.ndarray, scale: int) -> np.ndarray:
    image = Image.fromarray(np.round(np.clip(lr, 0, 1) * 255).astype(np.uint8))
    return np.asarray(image.resize((lr.shape[1] * scale, lr.shape[0] * scale), Image.LANCZOS), np.float32) / 255


def score(output: np.ndarray, hr: np.ndarray, crop: int, y_channel: bool, lpips=None) -> dict[str, float]:
    values = {"psnr": metrics.psnr(output, hr, crop, y_channel), "ssim": metrics.ssim(output, hr, crop, y_channel)}
    if lpips is not None:
        def tensor(a):
            return torch.from_numpy(np.ascontiguousarray(metrics.quantise(a)[crop:-crop or None, crop:-crop or None]
                                                         .transpose(2, 0, 1)))[None].float() / 255
        values["lpips"] = float(lpips(tensor(output), tensor(hr))[0])
    return values


def evaluate(upscaler, datasets: list[Dataset], scale: int, crop_border: int | None = None, y_channel: bool = True,
             lpips=None, baselines: bool = True, seed: int = 0) -> list[Row]:
    crop = scale if crop_border is None else crop_border
    rows = []
    for dataset in datasets:
        for sample in samples(dataset, scale, seed):
            row = Row(dataset.name, sample.name, sample.label)
            row.scores["model"] = score(upscaler.run(sample.lr), sample.hr, crop, y_channel, lpips)
            if baselines:
                row.scores["bicubic" if scale > 1 else "input"] = score(bicubic_up(sample.lr, scale), sample.hr, crop,
                                                                        y_channel, lpips)
                if scale > 1:
                    row.scores["lanczos"] = score(lanczos_up(sample.lr, scale), sample.hr, crop, y_channel, lpips)
            rows.append(row)
    return rows


def means(rows: list[Row], key) -> dict[tuple, dict[str, dict[str, float]]]:
    """Plain means (the field's dataset score) of every method and metric, grouped by `key(row)`."""
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    out = {}
    for group, members in groups.items():
        methods = members[0].scores
        out[group] = {m: {k: float(np.mean([r.scores[m][k] for r in members])) for k in methods[m]} for m in methods}
    return out


def markdown(rows: list[Row]) -> str:
    methods = list(rows[0].scores)
    metric_names = list(rows[0].scores["model"])
    header = "| dataset | image | label | " + " | ".join(f"{m} {k}" for m in methods for k in metric_names) + " |"
    lines = [header, "|" + "---|" * (3 + len(methods) * len(metric_names))]

    def cells(scores):
        return " | ".join(f"{scores[m][k]:.4f}" if k != "psnr" else f"{scores[m][k]:.2f}"
                          for m in methods for k in metric_names)

    for row in rows:
        lines.append(f"| {row.dataset} | {row.image} | {row.label} | {cells(row.scores)} |")
    for (dataset,), scores in means(rows, lambda r: (r.dataset,)).items():
        lines.append(f"| **{dataset}** | **mean** | | {cells(scores)} |")
    by_label = means(rows, lambda r: (r.dataset, r.label))
    if len(by_label) > len({r.dataset for r in rows}):
        for (dataset, label), scores in sorted(by_label.items()):
            lines.append(f"| {dataset} | mean | {label} | {cells(scores)} |")
    return "\n".join(lines)


def write_csv(rows: list[Row], path: str | Path) -> None:
    columns = [f"{m}_{k}" for m in rows[0].scores for k in rows[0].scores[m]]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "image", "label", *columns])
        for row in rows:
            writer.writerow([row.dataset, row.image, row.label,
                             *(repr(row.scores[m][k]) for m in row.scores for k in row.scores[m])])
