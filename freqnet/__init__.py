"""freqnet: HybridMoE-FreqNet image super-resolution and restoration."""

__version__ = "0.2.0"

from .archs import HybridMoEFreqNet  # noqa: E402
from .config import PRESETS, ModelConfig, preset_config  # noqa: E402
from .models import CheckpointError, build_model, fuse, load_model, save_model  # noqa: E402


def upscale(image, model="default", **options):
    """Upscale a PIL image or numpy array with a shipped or saved model; see `freqnet.inference.upscale`."""
    from .inference import upscale as run

    return run(image, model, **options)


__all__ = ["PRESETS", "CheckpointError", "HybridMoEFreqNet", "ModelConfig", "__version__", "build_model", "fuse", "load_model",
           "preset_config", "save_model", "upscale"]
