"""A training run's checkpoint files as data: atomic writes, SHA-256 manifests, and finding the newest intact weights.

The bottom floor (no other freqnet module): `models.load_model` reads run folders through it, and the trainer's
`CheckpointManager` writes them through it, so neither imports the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write) -> None:
    """`write(tmp_path)` then rename over `path`: readers never see a half-written file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifests(directory: Path) -> list[Path]:
    """Checkpoint manifests, newest first."""
    return sorted(Path(directory).glob("iter_*.json"), reverse=True)


def verify_manifest(directory: Path, manifest_path: Path) -> dict[str, Any]:
    """The manifest if every file it lists is present and intact; raises ValueError naming the problem."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{manifest_path.name}: unreadable manifest ({error})") from error
    for entry in manifest["files"].values():
        path = Path(directory) / entry["name"]
        if not path.is_file():
            raise ValueError(f"{entry['name']} is missing")
        if path.stat().st_size != entry["size"] or sha256(path) != entry["sha256"]:
            raise ValueError(f"{entry['name']} is truncated or corrupt (size/hash differ from the manifest)")
    return manifest


def newest_weights(directory: Path) -> Path:
    """The newest intact checkpoint's EMA weights (its model weights where EMA is off): what a run is used by."""
    for manifest in manifests(directory):
        try:
            files = verify_manifest(directory, manifest)["files"]
        except ValueError as error:
            warnings.warn(f"checkpoint {manifest.stem} unusable ({error}); taking the previous one")
            continue
        return Path(directory) / files.get("ema", files["model"])["name"]
    raise FileNotFoundError(f"{directory}: no intact checkpoint")
