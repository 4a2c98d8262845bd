"""`freqnet eval`: score models on paired folders, on HR folders degraded by a recipe, or on the field's standard
test sets (Set5, Set14, BSD100, Urban100 in their usual layout), in the field's convention (see metrics.py), beside
bicubic and Lanczos, per image, per degradation type and per dataset. Models are ours (any `Upscaler` source) or
any exported network as an `.onnx` file, several in one table."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from . import metrics
from .data import Degrader, PairedFolderDataset, list_images, modcrop, read_rgb
from .data.resize import imresize


@dataclass
class Sample:
    name: str
    label: str
    lr: np.ndarray  # float32 (H, W, 3)
    hr: np.ndarray


STANDARD_SETS = ("Set5", "Set14", "BSD100", "Urban100")
SET_ALIASES = {"B100": "BSD100", "BSD100": "B100"}  # papers say B100, the released folders BSD100


@dataclass
class Dataset:
    name: str
    hr: str
    lr: str | None = None
    recipe: str | None = None
    note: str = ""  # where the LR comes from, for the report


def standard_datasets(root: str | Path, sets: Sequence[str], scale: int) -> list[Dataset]:
    """`<root>/<Set>/HR` with the official `<Set>/LR_bicubic/X<scale>` where it exists; otherwise the LR is made
    from HR with our MATLAB-exact bicubic (which reproduces the official files), and the note says so."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"benchmark folder {root} does not exist")
    datasets = []
    for name in sets:
        folder = root / name
        if not folder.is_dir() and name in SET_ALIASES:
            folder = root / SET_ALIASES[name]
        hr = folder / "HR"
        if not hr.is_dir():
            raise ValueError(f"{folder}: no HR folder (expected {hr}/<image>.png)")
        lr = folder / "LR_bicubic" / f"X{scale}"
        if lr.is_dir():
            datasets.append(Dataset(name, str(hr), str(lr), note="official LR"))
        else:
            datasets.append(Dataset(name, str(hr), recipe="bicubic",
                                    note=f"no official X{scale} LR: made with MATLAB-exact bicubic"))
    return datasets


def load_runner(model: str, tile: int | str | None = "auto", ensemble: bool = False, precision: str = "fp32"):
    """An `.onnx` file runs in ONNX Runtime as exported; anything else is one of ours (shipped name, weights, run
    folder), at `precision`, with the 8-fold self-ensemble when asked."""
    if str(model).lower().endswith(".onnx"):
        from .onnx_model import OnnxModel

        return OnnxModel(model)
    from .inference import Upscaler

    return Upscaler(model, tile, precision=precision, ensemble=ensemble)


def model_label(model: str) -> str:
    return Path(model).stem if str(model).lower().endswith((".onnx", ".safetensors")) else Path(model).name or str(model)


@dataclass
class Row:
    dataset: str
    image: str
    label: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> metric -> value


def samples(dataset: Dataset, scale: int, seed: int = 0) -> Iterator[Sample]:
    """Every image of the dataset, or an error: a score over fewer images than asked for must not happen silently."""
    for folder in (dataset.hr, dataset.lr):
        if folder and not Path(folder).exists():
            raise FileNotFoundError(f"{dataset.name}: folder {folder} does not exist")
    if not list_images(dataset.hr):
        raise ValueError(f"{dataset.name}: no images in {dataset.hr}")
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


BASELINES = {"bicubic": bicubic_up, "lanczos": lanczos_up}


def evaluate(models, datasets: list[Dataset], scale: int, crop_border: int | None = None, y_channel: bool = True,
             lpips=None, baselines: Sequence[str] = ("bicubic", "lanczos"), seed: int = 0,
             progress: bool = False) -> list[Row]:
    """Score each model (anything with `.run(pixels)`; a mapping label -> model for several, else labelled "model")
    and the named baselines (at x1 the degraded input, labelled "input") on every image."""
    named = dict(models) if isinstance(models, Mapping) else {"model": models}
    crop = scale if crop_border is None else crop_border
    rows = []
    for dataset in datasets:
        bar = tqdm(total=len(list_images(dataset.hr)), desc=dataset.name, unit="image", leave=False,
                   disable=not progress)
        for sample in samples(dataset, scale, seed):
            row = Row(dataset.name, sample.name, sample.label)
            for label, model in named.items():
                row.scores[label] = score(model.run(sample.lr), sample.hr, crop, y_channel, lpips)
            if scale == 1 and baselines:
                row.scores["input"] = score(sample.lr, sample.hr, crop, y_channel, lpips)
            elif scale > 1:
                for name in baselines:
                    row.scores[name] = score(BASELINES[name](sample.lr, scale), sample.hr, crop, y_channel, lpips)
            rows.append(row)
            bar.update()
        bar.close()
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


def method_table(rows: list[Row], datasets: list[Dataset], extra: dict[str, dict[str, str]] | None = None,
                 labels: dict[str, str] | None = None, scored: str = "on Y, crop = scale") -> list[str]:
    """The papers' table: one row per method, a PSNR / SSIM cell per dataset (plain means), then any `extra`
    columns (header -> method -> cell); a line below says how it was `scored` and where each set's LR came from."""
    extra, labels = extra or {}, labels or {}
    methods = list(rows[0].scores)
    grouped = means(rows, lambda r: (r.dataset,))
    counts = {d.name: sum(r.dataset == d.name for r in rows) for d in datasets}
    lines = ["| method | " + " | ".join(f"{d.name} ({counts[d.name]})" for d in datasets)
             + "".join(f" | {header}" for header in extra) + " |",
             "|---|" + "---|" * (len(datasets) + len(extra))]
    for method in methods:
        cells = [f"{grouped[(d.name,)][method]['psnr']:.2f} / {grouped[(d.name,)][method]['ssim']:.4f}" for d in datasets]
        cells += [column.get(method, "") for column in extra.values()]
        lines.append(f"| {labels.get(method, method)} | " + " | ".join(cells) + " |")
    noted = [d for d in datasets if d.note]
    if noted:
        lines += ["", f"PSNR / SSIM {scored}. LR: " + "; ".join(f"{d.name} {d.note}" for d in noted) + "."]
    return lines


def markdown(rows: list[Row]) -> str:
    methods = list(rows[0].scores)
    metric_names = list(next(iter(rows[0].scores.values())))
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
