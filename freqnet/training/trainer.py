"""The training loop: one process per device, DDP when launched by torchrun, exact resume on CPU."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader

from .. import metrics
from ..archs.discriminator import UNetDiscriminatorSN
from ..archs.layers import DropPath
from ..archs.network import HybridMoEFreqNet
from ..config import ModelConfig
from ..data.datasets import HRFolderDataset, PairedFolderDataset, build_validation_set
from ..losses import (CharbonnierLoss, FFTLoss, L1Loss, LumaL1Loss, MSELoss, MSSSIMLoss, PerceptualLoss, SSIMLoss,
                      discriminator_loss, generator_loss)
from ..models import CheckpointError, load_model, read_metadata, transfer_weights
from ..precision import AUTOCAST_DTYPES, resolve_precision
from ..run_files import manifests
from .checkpoint import CheckpointManager
from .config import TrainConfig
from .ema import EMA
from .logger import RunLogger
from .schedule import loss_weights, lr_factor

NO_DECAY_NAMES = ("bias_table", "log_cutoff")
PIXEL_LOSSES = {"l1": L1Loss, "l1_y": LumaL1Loss, "mse": MSELoss, "charbonnier": CharbonnierLoss, "ssim": SSIMLoss,
                "ms_ssim": MSSSIMLoss, "fft": FFTLoss}


class TrainingStopped(RuntimeError):
    """Too many non-finite steps in a row; the run saved a checkpoint before raising."""


@dataclasses.dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Distributed":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend)
        return cls(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: no decay for norms, biases (all 1-D tensors), position-bias tables and cut-offs."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or any(key in name for key in NO_DECAY_NAMES):
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def epoch_batches(length: int, global_batch: int, seed: int, epoch: int, rank: int, world: int) -> list[list[int]]:
    """This rank's share of each global batch of the epoch's seeded permutation (incomplete tail dropped)."""
    order = np.random.default_rng([seed, epoch, 7]).permutation(length)
    per_rank = global_batch // world
    batches = []
    for start in range(0, length - global_batch + 1, global_batch):
        chunk = order[start:start + global_batch]
        batches.append(chunk[rank * per_rank:(rank + 1) * per_rank].tolist())
    return batches


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SIGNAL_MASKS = hasattr(signal, "pthread_sigmask")  # POSIX; Windows has neither masks nor process-group signals


def leave_stop_signals_to_main(_worker_id: int) -> None:
    """Ctrl-C, `timeout` and job schedulers signal the whole process group: a data-loading worker that died of
    it would crash the main process before it could save, so the workers ignore the signal and the main
    process stops them after its checkpoint. Ignoring also drops a signal left pending by `stop_signals_held`."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if SIGNAL_MASKS:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def stop_signals_held():
    """Workers start with the stop signals blocked: one that lands between a worker's fork and its
    `leave_stop_signals_to_main` stays pending instead of killing it. The main process gets its copy on leaving."""
    if not SIGNAL_MASKS:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(s) if isinstance(s, list) else s for s in state["python"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), 624, 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def config_mismatch(path: Path, saved: ModelConfig, wanted: ModelConfig) -> str:
    """Which model fields differ between a run's checkpoint and its config, with the version that wrote it, and the
    overrides that rebuild the checkpoint's model (presets change between versions; the files keep their config)."""
    version = read_metadata(path).get("freqnet_version", "an unknown version")
    fields = [f.name for f in dataclasses.fields(ModelConfig) if getattr(saved, f.name) != getattr(wanted, f.name)]
    changed = ", ".join(f"{name} {getattr(saved, name)} (config: {getattr(wanted, name)})" for name in fields)
    overrides = ", ".join(f"{name}: {json.dumps(getattr(saved, name))}" for name in fields)
    return (f"{path} was written by freqnet {version} for a different model: {changed}. Presets can change between "
            f"versions; to continue this run with this version set model.overrides: {{{overrides}}}")


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: str | Path, resume: str | None = None) -> None:
        self.config = c = config
        self.dist = Distributed.from_env()
        self.device = torch.device(f"cuda:{self.dist.local_rank}" if torch.cuda.is_available() else "cpu")
        if self.device.type == "cuda":  # fixed patch shapes: let cuDNN pick its fastest kernels; TF32 matmuls as convs
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
        if c.data.train.batch_size % (self.dist.world * c.optim.accumulate):
            raise ValueError(f"data.train.batch_size {c.data.train.batch_size} must divide by the {self.dist.world} "
                             f"ranks times optim.accumulate {c.optim.accumulate}")
        self.run_dir = Path(run_dir)
        previous = manifests(self.run_dir / "checkpoints")
        if previous and not resume:  # a fresh run here would have its checkpoints pruned in favour of the old ones
            raise ValueError(f"{self.run_dir} already holds a run (checkpoint {previous[0].stem}): continue it with "
                             "--resume auto, or train into another --out folder")
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(c.to_dict(), sort_keys=False))
        self.dist.barrier()
        torch.manual_seed(c.seed + self.dist.rank)
        np.random.seed(c.seed)
        random.seed(c.seed)

        self.model = HybridMoEFreqNet(c.model_config()).to(self.device)
        # Before resume, which overwrites it: `--resume auto` on a run without checkpoints yet starts from init.
        self.fresh_tensors = transfer_weights(self.model, c.model.init) if c.model.init else None
        self.ema = EMA(self.model, c.ema.decay) if c.ema.decay > 0 else None
        # fused: one kernel for every parameter (CPU and CUDA); on CPU 3 ms a `base` step against 16 ms per tensor.
        self.optimizer = torch.optim.AdamW(parameter_groups(self.model, c.optim.weight_decay), lr=c.optim.lr,
                                           betas=c.optim.betas, fused=True)
        self.precision = resolve_precision(c.precision, self.device)
        self.fell_back = False  # to fp32 after bad steps (`fallback_fp32`): kept across resumes
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.ddp = self.wrap(self.model)
        self.forward = torch.compile(self.ddp, mode=c.compile_mode) if c.compile else self.ddp
        self.pixel_losses = {name: cls() for name, cls in PIXEL_LOSSES.items()}
        self.perceptual: PerceptualLoss | None = None
        self.discriminator = self.d_optimizer = self.d_ddp = None
        self.base_drop_path = {m: m.p for m in self.model.modules() if isinstance(m, DropPath)}

        self.train_set = self.build_train_set()
        self.val_set = self.build_val_set() if self.dist.main else None
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", c.checkpoint.keep_last)
        self.iteration, self.epoch, self.position = 0, 0, 0
        self.bad_steps, self.history = 0, []
        self.resumed_from = self.resume(resume) if resume else None
        self.stop_signal: int | None = None

    # -- construction ------------------------------------------------------------------------------------
    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.dist.world == 1:
            return module
        ids = [self.dist.local_rank] if self.device.type == "cuda" else None
        # Idle MoE experts still join the graph with a zero-valued term, so no unused-parameter search is needed.
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def build_train_set(self):
        t, scale = self.config.data.train, self.config.model.scale
        if t.lr:
            data = PairedFolderDataset(t.lr, t.hr, scale, t.patch_size, seed=self.config.seed, augment=True,
                                       color_permute=t.color_permute)
            length = len(data)
        else:
            data = HRFolderDataset(t.hr, scale, t.patch_size, t.recipe, seed=self.config.seed, small=t.small_images,
                                   repeat=t.repeat, detail_candidates=t.detail_candidates,
                                   color_permute=t.color_permute)
            length = len(data.files)
            data.repeat = max(t.repeat, math.ceil(t.batch_size / length))  # at least one global batch per epoch
        return data

    def build_val_set(self):
        v, scale = self.config.data.val, self.config.model.scale
        if v.lr and v.hr:
            return PairedFolderDataset(v.lr, v.hr, scale)
        if v.hr:
            return build_validation_set(v.hr, self.run_dir / "validation", v.recipe, scale, self.config.seed, v.max_side)
        return None

    def ensure_gan(self) -> None:
        if self.discriminator is None:
            g = self.config.gan
            self.discriminator = UNetDiscriminatorSN(self.config.model_config().in_channels, g.features).to(self.device)
            self.d_optimizer = torch.optim.AdamW(self.discriminator.parameters(), lr=g.lr, betas=g.betas, weight_decay=0,
                                                 fused=True)
            self.d_ddp = self.wrap(self.discriminator)

    def ensure_perceptual(self) -> PerceptualLoss:
        if self.perceptual is None:
            p = self.config.perceptual
            self.perceptual = PerceptualLoss(p.weights, p.layers, p.arch).to(self.device)
        return self.perceptual

    # -- state ---------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        state = {"iteration": self.iteration, "epoch": self.epoch, "position": self.position,
                 "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                 "precision": self.precision, "fell_back": self.fell_back, "rng": rng_state(),
                 "bad_steps": self.bad_steps}
        if self.discriminator is not None:
            state["discriminator"] = self.discriminator.state_dict()
            state["d_optimizer"] = self.d_optimizer.state_dict()
        return state

    def save(self) -> Path | None:
        path = None
        if self.dist.main:
            ema = self.ema.model if self.ema is not None else None
            path = self.checkpoints.save(self.iteration, self.model, ema, self.state())
        self.dist.barrier()
        return path

    def resume(self, resume: str) -> str | None:
        if resume == "auto":
            found = self.checkpoints.load_latest()
            if found is None:
                return None
            state, paths = found
        else:
            path = Path(resume)
            manifest = path if path.suffix == ".json" else path.with_name(path.name.split(".")[0] + ".json")
            state, paths = CheckpointManager(manifest.parent).load(manifest)
        saved = load_model(paths["model"])
        if saved.config != self.model.config:  # e.g. a preset that a later version redefined
            raise CheckpointError(config_mismatch(paths["model"], saved.config, self.model.config))
        self.model.load_state_dict(saved.state_dict())
        if self.ema is not None and "ema" in paths:
            self.ema.load_state_dict(load_model(paths["ema"]).state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        # The config's precision applies on resume (e.g. `--set precision=bf16`), unless the run fell back to fp32.
        if state.get("fell_back"):
            self.precision, self.fell_back = "fp32", True
            self.scaler = torch.amp.GradScaler(self.device.type, enabled=False)
        if self.scaler.is_enabled() and state["scaler"]:  # fp16 then and now: the loss scale carries on
            self.scaler.load_state_dict(state["scaler"])
        if "discriminator" in state:
            self.ensure_gan()
            self.discriminator.load_state_dict(state["discriminator"])
            self.d_optimizer.load_state_dict(state["d_optimizer"])
        self.iteration, self.epoch, self.position = state["iteration"], state["epoch"], state["position"]
        self.bad_steps = state["bad_steps"]
        set_rng_state(state["rng"])
        return str(paths["model"])

    # -- data ------------------------------------------------------------------------------------------------
    def batches(self):
        """Endless batches from the saved (epoch, position); the order depends only on seed and epoch."""
        t = self.config.data.train
        while True:
            plan = epoch_batches(len(self.train_set), t.batch_size, self.config.seed, self.epoch, self.dist.rank,
                                 self.dist.world)
            self.train_set.set_epoch(self.epoch)
            # Own generator: the loader's worker-seed draw must not advance the global RNG (exact resume).
            loader = DataLoader(self.train_set, batch_sampler=plan[self.position:], num_workers=t.workers,
                                pin_memory=self.device.type == "cuda", generator=torch.Generator(),
                                worker_init_fn=leave_stop_signals_to_main)
            with stop_signals_held():
                this_epoch = iter(loader)
            for batch in this_epoch:
                self.position += 1
                yield batch
            self.epoch, self.position = self.epoch + 1, 0

    # -- one step ------------------------------------------------------------------------------------------
    def autocast(self):
        dtype = AUTOCAST_DTYPES[self.precision]
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def set_schedules(self, weights: dict[str, float]) -> float:
        c = self.config
        lr = c.optim.lr * lr_factor(self.iteration, c.iterations, c.optim)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        ramp = c.model.drop_path_ramp
        scale = 1.0 if ramp <= 0 else min(1.0, self.iteration / ramp)
        for module, base in self.base_drop_path.items():
            module.p = base * scale
        return lr

    def step(self, batch: dict[str, Any], weights: dict[str, float]) -> dict[str, float]:
        """One optimizer step over the batch, in `optim.accumulate` forward/backward passes."""
        passes = self.config.optim.accumulate
        lr_parts = batch["lr"].to(self.device, non_blocking=True).chunk(passes)
        hr_parts = batch["hr"].to(self.device, non_blocking=True).chunk(passes)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}
        fakes = []
        for index, (lr_img, hr_img) in enumerate(zip(lr_parts, hr_parts)):
            with self.gradient_sync(self.ddp, index == passes - 1):
                output, terms = self.loss_terms(lr_img, hr_img, weights)
                total = sum(weights[name] * value for name, value in terms.items())
                self.scaler.scale(total / passes).backward()
            for name, value in {**terms, "total": total}.items():
                sums[name] = sums.get(name, 0) + value.detach() / passes
            if weights["gan"] > 0:
                fakes.append(output.detach())
        total = sums["total"]

        self.scaler.unscale_(self.optimizer)
        clip = self.config.optim.grad_clip
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip > 0 else math.inf)
        finite = bool(torch.isfinite(grad_norm)) and bool(torch.isfinite(total))
        if finite:
            self.scaler.step(self.optimizer)
            self.bad_steps = 0
        else:
            self.bad_steps += 1
        self.scaler.update()
        if finite and self.ema is not None:
            self.ema.update(self.model, 0.0 if self.iteration < self.config.ema.start else None)
        if finite and weights["gan"] > 0:
            self.discriminator_step(fakes, hr_parts)
        logged = {name: float(value) for name, value in sums.items()}
        logged.update(grad_norm=float(grad_norm), skipped=float(not finite))
        return logged

    def gradient_sync(self, module: torch.nn.Module, last_pass: bool):
        """DDP all-reduces gradients in the last of the accumulated passes only."""
        return contextlib.nullcontext() if last_pass or self.dist.world == 1 else module.no_sync()

    def loss_terms(self, lr_img: torch.Tensor, hr_img: torch.Tensor,
                   weights: dict[str, float]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The model's output and each weighted loss term's value (unweighted) on one batch."""
        terms: dict[str, torch.Tensor] = {}
        with self.autocast():
            output = self.forward(lr_img)
        out32 = output.float()
        for name, loss in self.pixel_losses.items():
            if weights[name] > 0:
                terms[name] = loss(out32, hr_img)
        if weights["perceptual"] > 0:
            terms["perceptual"] = self.ensure_perceptual()(out32, hr_img)
        if weights["gan"] > 0:
            self.ensure_gan()
            self.discriminator.requires_grad_(False)
            with self.autocast():  # unwrapped: no discriminator gradients to synchronise in this pass
                terms["gan"] = generator_loss(self.config.gan.type, self.discriminator(output).float())
        if weights["moe_aux"] > 0 and self.model.moe_layers():
            terms["moe_aux"] = self.model.aux_loss()
        return output, terms

    def discriminator_step(self, fakes: list[torch.Tensor], reals: tuple[torch.Tensor, ...]) -> None:
        self.discriminator.requires_grad_(True)
        self.d_optimizer.zero_grad(set_to_none=True)
        for index, (fake, real) in enumerate(zip(fakes, reals)):
            with self.gradient_sync(self.d_ddp, index == len(fakes) - 1):
                with self.autocast():  # one forward for both halves: DDP allows one forward per backward
                    real_logits, fake_logits = self.d_ddp(torch.cat([real, fake])).float().chunk(2)
                    loss = discriminator_loss(self.config.gan.type, real_logits, fake_logits)
                (loss / len(fakes)).backward()
        self.d_optimizer.step()

    # -- validation ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def validate(self, logger: RunLogger) -> float | None:
        if self.val_set is None:
            return None
        v, scale = self.config.data.val, self.config.model.scale
        crop = scale if v.crop_border is None else v.crop_border
        model = (self.ema.model if self.ema is not None else self.model).eval()
        per_label: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for index in range(len(self.val_set)):
            sample = self.val_set[index]
            # fp32 whatever the training precision: the score `freqnet eval` and the model cards give these weights
            output = model(sample["lr"][None].to(self.device)).float().clamp(0, 1)[0].cpu()
            score = (metrics.psnr(output, sample["hr"], crop, v.test_y_channel),
                     metrics.ssim(output, sample["hr"], crop, v.test_y_channel))
            per_label[sample["label"]].append(score)
            per_label["all"].append(score)
            if index < v.samples:
                lr_up = F.interpolate(sample["lr"][None], size=sample["hr"].shape[-2:], mode="nearest")[0]
                logger.image(self.iteration, f"val/{sample['name']}", torch.cat([lr_up, output, sample["hr"]], dim=2))
        means = {label: (float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores])))
                 for label, scores in per_label.items()}
        for label, (p, s) in means.items():
            logger.scalars(self.iteration, {f"psnr/{label}": p, f"ssim/{label}": s}, "val/")
        shown = means if len(means) > 2 else {"all": means["all"]}  # one label: "all" says it all
        text = ", ".join(f"{label} {p:.3f} dB / {s:.4f}" for label, (p, s) in sorted(shown.items()))
        logger.info(f"validation at {self.iteration}: {text}")
        psnr_all = means["all"][0]
        best = self.checkpoints.best_metric()
        if best is None or psnr_all > best:
            self.checkpoints.save_best(model, psnr_all, self.iteration)
        return psnr_all

    def log_experts(self, logger: RunLogger) -> None:
        for index, stats in enumerate(self.model.expert_stats()):
            load = torch.tensor(stats["load"])
            logger.scalars(self.iteration, {f"expert{e}": float(v) for e, v in enumerate(load)}, f"moe/layer{index}/")
            logger.scalars(self.iteration, {"dropped": stats["dropped"]}, f"moe/layer{index}/")
            logger.histogram(self.iteration, f"moe/layer{index}/load", load)

    # -- the loop --------------------------------------------------------------------------------------------
    def request_stop(self, signum, _frame) -> None:
        self.stop_signal = signum

    def run(self) -> int:
        c = self.config
        logger = RunLogger(self.run_dir, c.iterations, self.iteration, self.dist.main, c.log.tensorboard, c.log.progress)
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        for signum in previous:
            signal.signal(signum, self.request_stop)
        try:
            return self.loop(logger)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            logger.close()

    def loop(self, logger: RunLogger) -> int:
        c = self.config
        if self.resumed_from:
            logger.info(f"resumed from iteration {self.iteration} ({self.resumed_from})")
        elif self.fresh_tensors is not None:
            logger.info(f"initialised from {c.model.init}; {len(self.fresh_tensors)} tensors kept fresh"
                        f"{': ' + ', '.join(self.fresh_tensors[:6]) if self.fresh_tensors else ''}")
        logger.info(f"training {c.name}: {c.model.preset} x{c.model.scale}, {c.iterations} iterations, "
                    f"{self.dist.world} process(es) on {self.device}, precision {self.precision}")
        phase_before = None
        data = self.batches()
        window_start, window_steps = time.perf_counter(), 0
        while self.iteration < c.iterations:
            weights = loss_weights(self.iteration, c.losses, c.curriculum)
            phase = [(self.iteration >= s.start, self.iteration >= s.start + s.ramp) for s in c.curriculum]
            if phase != phase_before:  # a stage started or finished its ramp
                active = {k: round(v, 6) for k, v in weights.items() if v > 0}
                logger.info(f"iteration {self.iteration}: loss weights {active}")
                phase_before = phase
            lr = self.set_schedules(weights)
            logged = self.step(next(data), weights)
            self.iteration += 1
            window_steps += 1
            self.history.append(logged)
            logger.step({k: v for k, v in logged.items() if k in ("total", "l1", "l1_y", "perceptual", "gan")})
            if logged["skipped"]:
                logger.info(f"iteration {self.iteration}: non-finite loss or gradient, step skipped "
                            f"({self.bad_steps} in a row)")
                if self.bad_steps >= c.max_bad_steps:
                    if c.fallback_fp32 and self.precision != "fp32":
                        logger.info(f"{self.bad_steps} bad steps in a row: falling back from {self.precision} to fp32")
                        self.precision, self.bad_steps, self.fell_back = "fp32", 0, True
                        self.scaler = torch.amp.GradScaler(self.device.type, enabled=False)
                    else:
                        path = self.save()
                        logger.info(f"stopping: {self.bad_steps} non-finite steps in a row; saved {path}. Lower "
                                    "optim.lr, raise optim.warmup, or set fallback_fp32: true for mixed precision.")
                        raise TrainingStopped(f"{self.bad_steps} non-finite steps in a row at iteration {self.iteration}")
            if self.dist.main and (self.iteration % c.log.every == 0 or self.iteration == c.iterations):
                rate = window_steps / (time.perf_counter() - window_start)
                window_start, window_steps = time.perf_counter(), 0
                logger.scalars(self.iteration, {**{k: v for k, v in logged.items()}, "lr": lr, "it_per_s": rate}, "train/")
                self.log_experts(logger)
                terms = " ".join(f"{k} {v:.4g}" for k, v in logged.items() if k not in ("total", "skipped"))
                logger.info(f"iter {self.iteration} | loss {logged['total']:.5g} | {terms} | lr {lr:.3g} | {rate:.2f} it/s")
            if self.dist.main and c.data.val.every and self.iteration % c.data.val.every == 0:
                self.validate(logger)
            if c.data.val.every and self.iteration % c.data.val.every == 0:
                self.dist.barrier()  # the other ranks wait while rank 0 validates
            if self.iteration % c.checkpoint.every == 0 or self.iteration == c.iterations:
                self.save()
            if self.stop_signal is not None:
                path = self.save()
                name = signal.Signals(self.stop_signal).name
                logger.info(f"{name} received: stopped after iteration {self.iteration}, saved {path}. "
                            f"Resume with: freqnet train <config> --out {self.run_dir} --resume auto")
                return 0
        if self.dist.main and self.val_set is not None and c.iterations % max(1, c.data.val.every) != 0:
            self.validate(logger)
        logger.info(f"done: {self.iteration} iterations; checkpoints in {self.checkpoints.directory}")
        return 0
