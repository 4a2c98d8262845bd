"""Build, fuse, save and load models: the entry points every tool goes through."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from . import __version__
from .archs import ARCHITECTURE, HybridMoEFreqNet
from .config import ModelConfig, preset_config
from .run_files import newest_weights


def build_model(preset: str = "base", scale: int = 4, **overrides: Any) -> HybridMoEFreqNet:
    """A fresh training-form model from a preset, with any `ModelConfig` field overridden."""
    return HybridMoEFreqNet(preset_config(preset, scale, **overrides))


def fuse(model: HybridMoEFreqNet) -> HybridMoEFreqNet:
    """Deploy form: a copy in eval mode with every re-parameterisable branch merged into one conv."""
    fused = detached_copy(model).eval()
    for module in list(fused.modules()):
        if hasattr(module, "fuse_") and getattr(module, "fused", None) is None:
            module.fuse_()
    fused.is_fused = True
    return fused.to(memory_format=torch.channels_last)


def unfuse(model: HybridMoEFreqNet, seed: int = 0) -> HybridMoEFreqNet:
    """Training form of a fused model: every merged conv split back into branches that add up to it exactly, so a
    shipped model can be fine-tuned (the original branch values are gone; `unfuse_` picks ones that reproduce it)."""
    generator = torch.Generator().manual_seed(seed)
    trainable = detached_copy(model).to(memory_format=torch.contiguous_format)
    for module in list(trainable.modules()):
        if hasattr(module, "unfuse_") and getattr(module, "fused", None) is not None:
            module.unfuse_(generator)
    trainable.is_fused = False
    return trainable


def detached_copy(model: nn.Module) -> nn.Module:
    """`copy.deepcopy` that also works right after a training forward: tensors that forward left on modules with
    their graph (the MoE's aux loss) cannot be deep-copied, so the copy gets them detached."""
    memo = {id(value): value.detach().clone() for module in model.modules() for value in vars(module).values()
            if isinstance(value, torch.Tensor) and value.grad_fn is not None}
    return copy.deepcopy(model, memo)


def is_fused(model: nn.Module) -> bool:
    return bool(getattr(model, "is_fused", False))


# The architecture description also travels as a small uint8 tensor (UTF-8 JSON) in the state dict: loaders that
# read only tensors (spandrel, ComfyUI, chaiNNer) drop the file header, and need it to rebuild the network.
DESCRIPTION_KEY = "freqnet_description"


def description_tensor(model: HybridMoEFreqNet) -> torch.Tensor:
    text = json.dumps({"architecture": ARCHITECTURE, "config": json.loads(model.config.to_json()),
                       "fused": is_fused(model)})
    return torch.tensor(list(text.encode()), dtype=torch.uint8)


def read_description(tensor: torch.Tensor) -> dict[str, Any]:
    return json.loads(bytes(tensor.to(torch.uint8).tolist()).decode())


def save_model(model: HybridMoEFreqNet, path: str | Path, extra: dict[str, str] | None = None) -> None:
    """Weights as safetensors; the metadata alone (or the description tensor alone) rebuilds the architecture."""
    metadata = {
        "architecture": ARCHITECTURE,
        "freqnet_version": __version__,
        "config": model.config.to_json(),
        "fused": json.dumps(is_fused(model)),
        **(extra or {}),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    state[DESCRIPTION_KEY] = description_tensor(model)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)


class CheckpointError(ValueError):
    """A file that is not a loadable freqnet model; the message says what is wrong with it."""


def read_metadata(path: str | Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as error:  # safetensors raises several types for non-safetensors files
        raise CheckpointError(f"{path}: not a readable .safetensors file ({error})") from error


SHIPPED = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "real-x4"  # photos as they come (JPEG, noise); the classical x2/x3/x4 by name


def shipped_models() -> dict[str, Path]:
    """Models inside the package, by name (`default` is the real-photo model)."""
    found = {p.stem: p for p in sorted(SHIPPED.glob("*.safetensors"))}
    if DEFAULT_MODEL in found:
        found["default"] = found[DEFAULT_MODEL]
    return found


def locate(name_or_path: str | Path) -> Path:
    shipped = shipped_models()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():  # a training run, or its checkpoints folder
        return newest_weights(path / "checkpoints" if (path / "checkpoints").is_dir() else path)
    names = sorted(shipped) or ["none are shipped with this version"]
    raise ValueError(f"no model {str(name_or_path)!r}: give a .safetensors path, a training run folder or a shipped "
                     f"name ({', '.join(names)})")


def transfer_weights(model: HybridMoEFreqNet, source: str | Path) -> list[str]:
    """Copy into `model` every tensor of `source` (as `load_model` finds it) whose name and shape match; returns the
    names left at their initialisation. Fine-tuning ×3 from ×4, or a real-world model from a classical one, starts
    a long way up the learning curve this way."""
    trained = load_model(source)
    if is_fused(trained):  # a shipped model: its branches are rebuilt, so fine-tuning starts from its exact function
        trained = unfuse(trained)
    own = model.state_dict()
    matching = {k: v for k, v in trained.state_dict().items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matching, strict=False)
    return sorted(set(own) - set(matching))


def load_model(name_or_path: str | Path, device: str | torch.device = "cpu") -> HybridMoEFreqNet:
    """Rebuild the model a file's metadata describes (a shipped name, a path, or a run folder: its newest intact EMA
    weights) and load its weights, checking every key and shape."""
    path = locate(name_or_path)
    metadata = read_metadata(path)
    with safe_open(str(path), framework="pt", device="cpu") as f:
        if "config" not in metadata and DESCRIPTION_KEY in f.keys():  # header dropped by a tensors-only tool
            described = read_description(f.get_tensor(DESCRIPTION_KEY))
            metadata = {"architecture": described["architecture"], "config": json.dumps(described["config"]),
                        "fused": json.dumps(described["fused"])}
    architecture = metadata.get("architecture")
    if architecture != ARCHITECTURE:
        raise CheckpointError(f"{path}: architecture is {architecture!r}, expected {ARCHITECTURE!r}")
    try:
        config = ModelConfig.from_dict(json.loads(metadata["config"]))
    except (KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: bad or missing model config in metadata ({error})") from error
    model = HybridMoEFreqNet(config)
    if json.loads(metadata.get("fused", "false")):
        model = fuse(model)

    expected = model.state_dict()
    with safe_open(str(path), framework="pt", device="cpu") as f:
        found = set(f.keys()) - {DESCRIPTION_KEY}
        missing, extra = sorted(set(expected) - found), sorted(found - set(expected))
        if missing or extra:
            raise CheckpointError(f"{path}: state does not match the config: missing keys {missing[:8]}"
                                  f"{'...' if len(missing) > 8 else ''}, unexpected keys {extra[:8]}"
                                  f"{'...' if len(extra) > 8 else ''}")
        state = {}
        for key in expected:
            tensor = f.get_tensor(key)
            if tensor.shape != expected[key].shape:
                raise CheckpointError(f"{path}: {key} has shape {tuple(tensor.shape)}, "
                                      f"the config needs {tuple(expected[key].shape)}")
            state[key] = tensor
    model.load_state_dict(state)
    return model.to(device).eval()
