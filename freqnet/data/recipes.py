"""Degradation recipes as data: a list of steps with parameter ranges, sampled per image from a seeded RNG.

A value in a step is a number (fixed), a two-element list `[low, high]` (uniform), or `{"choice": [...]}`.
Every applied step records the parameters it drew, so validation can report per degradation type.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import degradations as ops
from .kernels import motion_kernel, random_mixed_kernel, sinc_kernel

Record = dict[str, Any]

KERNEL_SIZES = {"choice": [7, 9, 11, 13, 15, 17, 19, 21]}
FIRST_ORDER_KERNELS = {"iso": 0.45, "aniso": 0.25, "generalized_iso": 0.12, "generalized_aniso": 0.03,
                       "plateau_iso": 0.12, "plateau_aniso": 0.03}

TO_SCALE = {"type": "to_scale", "mode": "matlab_bicubic"}
DENOISE = {"type": "noise", "gaussian_prob": 1.0, "sigma": {"choice": [15, 25, 50]}, "grey_prob": 0.0, "tag": True}
DEBLUR = {"type": "blur", "kernel_size": {"choice": [15, 17, 19, 21]},
          "kernel_probs": {"iso": 0.25, "aniso": 0.25, "motion": 0.5}, "sigma": [0.5, 3.0],
          "motion_length": [5.0, 15.0], "tag": True}

NAMED_RECIPES: dict[str, dict[str, Any]] = {
    "bicubic": {"steps": [{"type": "to_scale", "mode": "matlab_bicubic"}]},
    "realesrgan": {"steps": [
        {"type": "blur", "kernel_size": KERNEL_SIZES, "kernel_probs": FIRST_ORDER_KERNELS, "sigma": [0.2, 3.0],
         "beta_gaussian": [0.5, 4.0], "beta_plateau": [1.0, 2.0], "sinc_prob": 0.1},
        {"type": "resize", "probs": {"up": 0.2, "down": 0.7, "keep": 0.1}, "up": [1.0, 1.5], "down": [0.15, 1.0]},
        {"type": "noise", "gaussian_prob": 0.5, "sigma": [1.0, 30.0], "poisson_scale": [0.05, 3.0], "grey_prob": 0.4},
        {"type": "jpeg", "quality": [30, 95]},
        {"type": "blur", "prob": 0.8, "kernel_size": KERNEL_SIZES, "kernel_probs": FIRST_ORDER_KERNELS,
         "sigma": [0.2, 1.5], "beta_gaussian": [0.5, 4.0], "beta_plateau": [1.0, 2.0], "sinc_prob": 0.1},
        {"type": "resize", "relative_to": "target", "probs": {"up": 0.3, "down": 0.4, "keep": 0.3},
         "up": [1.0, 1.2], "down": [0.3, 1.0]},
        {"type": "noise", "gaussian_prob": 0.5, "sigma": [1.0, 25.0], "poisson_scale": [0.05, 2.5], "grey_prob": 0.4},
        {"type": "shuffle", "groups": [
            [{"type": "to_scale", "mode": "random"}, {"type": "sinc", "prob": 0.8, "cutoff": [math.pi / 3, math.pi]}],
            [{"type": "jpeg", "quality": [30, 95]}],
        ]},
    ]},
    "denoise": {"steps": [TO_SCALE, DENOISE]},
    "deblur": {"steps": [DEBLUR, TO_SCALE]},
    "mixed": {"mixture": {"bicubic": 0.4, "realesrgan": 0.2, "denoise": 0.2, "deblur": 0.2}},
    "restore": {"mixture": {"denoise": 0.5, "deblur": 0.5}},
}
# What photos people upscale carry, one kind at a time (fixed for evaluation; seeded, so a seed gives the same LR):
# a web/phone JPEG, sensor noise (read noise or shot noise, half each), a mildly soft lens, and Real-ESRGAN's draw.
REAL_NOISE = {"type": "noise", "gaussian_prob": 0.5, "sigma": [5.0, 15.0], "poisson_scale": [0.5, 1.5], "grey_prob": 0.0}
NAMED_RECIPES.update({
    "real_jpeg": {"steps": [TO_SCALE, {"type": "jpeg", "quality": [30, 70]}]},
    "real_noise": {"steps": [TO_SCALE, REAL_NOISE]},
    "real_blur": {"steps": [{"type": "blur", "kernel_size": {"choice": [9, 11, 13]},
                             "kernel_probs": {"iso": 0.5, "aniso": 0.5}, "sigma": [0.6, 1.6]}, TO_SCALE]},
    "real_mixed": NAMED_RECIPES["realesrgan"],
})
# Training mixture of the real-photo models: single degradations at photo strength (wider than the evaluation
# ranges), clean bicubic so that clean input is not harmed, and some of Real-ESRGAN's second-order draw. (With 40 %
# second-order and 20 % clean, 900 iterations left clean inputs 1.8 dB below the classical model and JPEG only
# +0.4 dB over Lanczos: the strong draws taught smoothing. With 30 % JPEG the JPEG validation was flat, and 100
# JPEG-only iterations raised it by 0.36 dB: JPEG's share was what limited it, so it is now 45 %.)
NAMED_RECIPES.update({
    "photo_jpeg": {"steps": [{"type": "to_scale", "mode": "random"}, {"type": "jpeg", "quality": [25, 95]}]},
    "photo_noise": {"steps": [TO_SCALE, {**REAL_NOISE, "sigma": [1.0, 25.0], "poisson_scale": [0.05, 2.5],
                                         "grey_prob": 0.3},
                              {"type": "jpeg", "prob": 0.5, "quality": [40, 95]}]},
    "real": {"mixture": {"bicubic": 0.3, "photo_jpeg": 0.45, "photo_noise": 0.15, "realesrgan": 0.05,
                         "real_blur": 0.05}},
})
# One level or kind each, for evaluation: the field scores a restorer per noise level and per blur type, and a
# mixture recipe gives each image one random draw. The name says the level, so the label needs no tag.
NAMED_RECIPES.update({f"denoise_sigma{sigma}": {"steps": [TO_SCALE, {**DENOISE, "sigma": sigma, "tag": False}]}
                      for sigma in (15, 25, 50)})
NAMED_RECIPES.update({f"deblur_{kind}": {"steps": [{**DEBLUR, "kernel_probs": {kind: 1.0}, "tag": False}, TO_SCALE]}
                      for kind in ("iso", "aniso", "motion")})


def sample(spec: Any, rng: np.random.Generator, integer: bool = False) -> Any:
    if isinstance(spec, dict) and "choice" in spec:
        value = spec["choice"][int(rng.integers(len(spec["choice"])))]
    elif isinstance(spec, (list, tuple)) and len(spec) == 2:
        low, high = spec
        value = int(rng.integers(low, high + 1)) if integer else float(rng.uniform(low, high))
    else:
        value = spec
    return int(value) if integer else (float(value) if isinstance(value, (int, float)) else value)


def pick(weights: dict[str, float], rng: np.random.Generator) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


@dataclass
class Pass:
    """What one degradation of one image carries between its steps; kept off the Degrader, which is shared."""

    rng: np.random.Generator
    target: tuple[int, int]  # LR size (h, w)
    tags: list[str] = field(default_factory=list)  # label parts for per-degradation validation
    records: list[Record] = field(default_factory=list)


class Degrader:
    """Applies a recipe to HR images: `degrader(hr, rng) -> (lr, info)` with lr of size hr / scale."""

    def __init__(self, recipe: str | dict[str, Any], scale: int) -> None:
        self.name, self.recipe = resolve_recipe(recipe)
        self.scale = scale
        self.sub = {name: Degrader(name, scale) for name in self.recipe.get("mixture", {})}

    def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, Record]:
        h, w = hr.shape[:2]
        if h % self.scale or w % self.scale:
            raise ValueError(f"HR size {w}x{h} is not a multiple of scale {self.scale}; crop it first (modcrop)")
        if self.sub:
            choice = pick(self.recipe["mixture"], rng)
            lr, info = self.sub[choice](hr, rng)
            return lr, {**info, "mixture": self.name}
        run = Pass(rng, (h // self.scale, w // self.scale))
        image = hr.astype(np.float32)
        for step in self.recipe["steps"]:
            image = self.apply(step, image, run)
        image = ops.resize(image, run.target, "matlab_bicubic") if image.shape[:2] != run.target else image
        lr = np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0  # LR is stored and read as 8-bit
        label = "/".join([self.name, *run.tags])
        return lr.astype(np.float32), {"recipe": self.name, "label": label, "scale": self.scale, "steps": run.records}

    def apply(self, step: dict[str, Any], image: np.ndarray, run: Pass) -> np.ndarray:
        kind = step["type"]
        if kind == "shuffle":
            for index in run.rng.permutation(len(step["groups"])):
                for sub in step["groups"][index]:
                    image = self.apply(sub, image, run)
            return image
        if run.rng.random() >= step.get("prob", 1.0):
            return image
        handler = getattr(self, f"step_{kind}", None)
        if handler is None:
            raise ValueError(f"unknown degradation step type {kind!r}")
        image, record = handler(step, image, run)
        run.records.append({"type": kind, **record})
        return image

    # -- steps -------------------------------------------------------------------------------------------
    def step_blur(self, step, image, run: Pass):
        size = sample(step.get("kernel_size", 21), run.rng, integer=True)
        if run.rng.random() < step.get("sinc_prob", 0.0):
            low = math.pi / 3 if size < 13 else math.pi / 5
            cutoff = float(run.rng.uniform(low, math.pi))
            kernel, record = sinc_kernel(size, cutoff), {"kernel": "sinc", "size": size, "cutoff": cutoff}
        else:
            kind = pick(step.get("kernel_probs", {"iso": 1.0}), run.rng)
            if kind == "motion":
                length, angle = sample(step.get("motion_length", [5.0, 15.0]), run.rng), float(run.rng.uniform(0, math.pi))
                kernel = motion_kernel(size, length, angle)
                record = {"kernel": "motion", "size": size, "length": length, "angle": angle}
            else:
                kernel, record = random_mixed_kernel(run.rng, size, kind, tuple(step.get("sigma", [0.2, 3.0])),
                                                     tuple(step.get("beta_gaussian", [0.5, 4.0])),
                                                     tuple(step.get("beta_plateau", [1.0, 2.0])))
        if step.get("tag"):
            run.tags.append(record["kernel"])
        return ops.blur(image, kernel), record

    def step_sinc(self, step, image, run: Pass):
        size = sample(step.get("kernel_size", 21), run.rng, integer=True)
        cutoff = sample(step.get("cutoff", [math.pi / 3, math.pi]), run.rng)
        return ops.blur(image, sinc_kernel(size, cutoff)), {"size": size, "cutoff": cutoff}

    def step_resize(self, step, image, run: Pass):
        direction = pick(step.get("probs", {"up": 0.2, "down": 0.7, "keep": 0.1}), run.rng)
        factor = 1.0 if direction == "keep" else sample(step.get(direction, [1.0, 1.0]), run.rng)
        mode = str(run.rng.choice(step.get("modes", list(ops.RESIZE_MODES))))
        base = run.target if step.get("relative_to") == "target" else image.shape[:2]
        size = (max(1, int(base[0] * factor)), max(1, int(base[1] * factor)))
        return ops.resize(image, size, mode), {"direction": direction, "factor": factor, "mode": mode, "size": list(size)}

    def step_to_scale(self, step, image, run: Pass):
        mode = step.get("mode", "matlab_bicubic")
        if mode == "random":
            mode = str(run.rng.choice(ops.RESIZE_MODES))
        if image.shape[:2] == run.target:
            return image, {"mode": mode, "size": list(run.target)}
        return ops.resize(image, run.target, mode), {"mode": mode, "size": list(run.target)}

    def step_noise(self, step, image, run: Pass):
        grey = bool(run.rng.random() < step.get("grey_prob", 0.0))
        if run.rng.random() < step.get("gaussian_prob", 1.0):
            sigma = sample(step.get("sigma", [1.0, 30.0]), run.rng)
            out, record = ops.gaussian_noise(image, sigma, grey, run.rng), {"noise": "gaussian", "sigma": sigma, "grey": grey}
            if step.get("tag"):
                run.tags.append(f"sigma{sigma:g}")
        else:
            scale = sample(step.get("poisson_scale", [0.05, 3.0]), run.rng)
            out, record = ops.poisson_noise(image, scale, grey, run.rng), {"noise": "poisson", "scale": scale, "grey": grey}
        return np.clip(out, 0.0, 1.0), record

    def step_jpeg(self, step, image, run: Pass):
        quality = sample(step.get("quality", [30, 95]), run.rng, integer=True)
        return ops.jpeg(image, quality), {"quality": quality}


def resolve_recipe(recipe: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A name of NAMED_RECIPES, a path to a YAML recipe, or a dict; returns (name, validated recipe)."""
    if isinstance(recipe, dict):
        spec, name = copy.deepcopy(recipe), recipe.get("name", "custom")
    elif recipe in NAMED_RECIPES:
        spec, name = copy.deepcopy(NAMED_RECIPES[recipe]), recipe
    elif Path(recipe).suffix in (".yaml", ".yml") and Path(recipe).is_file():
        import yaml

        spec = yaml.safe_load(Path(recipe).read_text())
        name = spec.get("name", Path(recipe).stem)
    else:
        raise ValueError(f"unknown recipe {recipe!r}: allowed {sorted(NAMED_RECIPES)} or a .yaml file")
    if ("steps" in spec) == ("mixture" in spec):
        raise ValueError(f"recipe {name!r} needs exactly one of 'steps' or 'mixture'")
    for sub in spec.get("mixture", {}):
        if sub not in NAMED_RECIPES or "mixture" in NAMED_RECIPES[sub]:
            raise ValueError(f"recipe {name!r}: mixture entry {sub!r} must name a step recipe")
    return name, spec


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom/right so both sides are multiples of `scale` (the field's convention for HR images)."""
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]
