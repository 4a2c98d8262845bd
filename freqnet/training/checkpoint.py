"""Checkpoints that survive crashes: atomic writes, a manifest written last, verification on resume.

Per checkpoint `iter_XXXXXXXX`: `.safetensors` (model) and `_ema.safetensors`, both loadable by
`freqnet.load_model`; `.state.pt` (optimizer, scheduler, scaler, RNG, iteration, data position; read back with
`weights_only=True`); and `.json`, the manifest with sizes and SHA-256 of the others. A checkpoint without a
valid manifest, or whose files do not match it, is skipped with a warning in favour of the previous one.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from ..models import save_model
from ..run_files import atomic_write, manifests, newest_weights, sha256, verify_manifest


class CheckpointManager:
    def __init__(self, directory: str | Path, keep_last: int = 3) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keep_last = keep_last

    def stem(self, iteration: int) -> str:
        return f"iter_{iteration:08d}"

    def save(self, iteration: int, model, ema_model, state: dict[str, Any]) -> Path:
        stem = self.stem(iteration)
        files = {"model": self.directory / f"{stem}.safetensors", "state": self.directory / f"{stem}.state.pt"}
        meta = {"iteration": str(iteration)}
        atomic_write(files["model"], lambda p: save_model(model, p, extra=meta))
        if ema_model is not None:
            files["ema"] = self.directory / f"{stem}_ema.safetensors"
            atomic_write(files["ema"], lambda p: save_model(ema_model, p, extra=meta))
        atomic_write(files["state"], lambda p: torch.save(state, p))
        manifest = {"iteration": iteration,
                    "files": {k: {"name": v.name, "size": v.stat().st_size, "sha256": sha256(v)} for k, v in files.items()}}
        path = self.directory / f"{stem}.json"
        atomic_write(path, lambda p: p.write_text(json.dumps(manifest, indent=1)))
        self.prune()
        return path

    def manifests(self) -> list[Path]:
        return manifests(self.directory)

    def prune(self) -> None:
        for manifest in self.manifests()[self.keep_last:]:
            stem = manifest.stem
            for path in self.directory.glob(f"{stem}*"):
                path.unlink(missing_ok=True)

    def verify(self, manifest_path: Path) -> dict[str, Any]:
        return verify_manifest(self.directory, manifest_path)

    def load(self, manifest_path: Path) -> tuple[dict[str, Any], dict[str, Path]]:
        manifest = self.verify(manifest_path)
        paths = {key: self.directory / entry["name"] for key, entry in manifest["files"].items()}
        state = torch.load(paths["state"], map_location="cpu", weights_only=True)
        return state, paths

    def load_latest(self) -> tuple[dict[str, Any], dict[str, Path]] | None:
        """Newest valid checkpoint; corrupt newer ones are reported and skipped. None if there is none."""
        for manifest in self.manifests():
            try:
                return self.load(manifest)
            except Exception as error:  # any failure to read means: fall back to the previous checkpoint
                warnings.warn(f"checkpoint {manifest.stem} unusable ({error}); falling back to the previous one")
        return None

    def newest_weights(self) -> Path:
        return newest_weights(self.directory)

    def save_best(self, model, metric: float, iteration: int) -> None:
        path = self.directory / "best.safetensors"
        atomic_write(path, lambda p: save_model(model, p, extra={"iteration": str(iteration), "psnr": f"{metric:.4f}"}))
        (self.directory / "best.json").write_text(json.dumps({"iteration": iteration, "psnr": metric}))

    def best_metric(self) -> float | None:
        path = self.directory / "best.json"
        return json.loads(path.read_text())["psnr"] if path.is_file() else None
