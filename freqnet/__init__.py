"""freqnet: HybridMoE-FreqNet image super-resolution and restoration."""

__version__ = "0.1.0"

from .config import PRESETS, ModelConfig, preset_config  # noqa: E402
from .models import CheckpointError, build_model, fuse, load_model, save_model  # noqa: E402

__all__ = ["PRESETS", "CheckpointError", "ModelConfig", "__version__", "build_model", "fuse", "load_model",
           "preset_config", "save_model"]
