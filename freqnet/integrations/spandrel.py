"""freqnet as a spandrel architecture, so chaiNNer, ComfyUI and anything else that loads models through spandrel
runs freqnet files: `import freqnet.integrations.spandrel` once, then `spandrel.ModelLoader().load_from_file(...)`.

spandrel sees tensors only (it drops the file header), so detection and the rebuild read the description tensor
that every freqnet file carries (`freqnet.models.DESCRIPTION_KEY`): exact, and never true for a foreign file.
"""

from __future__ import annotations

import torch

from . import import_spandrel

import_spandrel()  # before spandrel's names: it needs torchvision's stand-ins where torchvision is absent
from spandrel import (MAIN_REGISTRY, Architecture, ArchSupport, ImageModelDescriptor, ModelTiling,  # noqa: E402
                      SizeRequirements)

from ..archs import ARCHITECTURE, HybridMoEFreqNet  # noqa: E402
from ..config import ModelConfig  # noqa: E402
from ..models import DESCRIPTION_KEY, fuse, read_description  # noqa: E402

ARCH_ID = "freqnet"


def is_freqnet(state_dict: dict[str, torch.Tensor]) -> bool:
    tensor = state_dict.get(DESCRIPTION_KEY)
    if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.uint8 or tensor.dim() != 1:
        return False
    try:
        return read_description(tensor).get("architecture") == ARCHITECTURE
    except (UnicodeDecodeError, ValueError):
        return False


class FreqNetArch(Architecture[HybridMoEFreqNet]):
    def __init__(self) -> None:
        super().__init__(id=ARCH_ID, name="HybridMoE-FreqNet", detect=is_freqnet)

    def load(self, state_dict: dict[str, torch.Tensor]) -> ImageModelDescriptor[HybridMoEFreqNet]:
        description = read_description(state_dict.pop(DESCRIPTION_KEY))
        config = ModelConfig.from_dict(description["config"])
        model = HybridMoEFreqNet(config)
        if description["fused"]:
            model = fuse(model)
        tags = [f"{config.dim}nf", f"{config.levels}lv", f"{config.num_experts}experts" if config.use_moe else "dense"]
        return ImageModelDescriptor(
            model, state_dict, architecture=self,
            purpose="SR" if config.scale > 1 else "Restoration",
            tags=tags,
            supports_half=True,  # the frequency split runs in fp32 inside; the rest follows the input dtype
            supports_bfloat16=True,
            scale=config.scale,
            input_channels=config.in_channels,
            output_channels=config.in_channels,
            size_requirements=SizeRequirements(),  # any size: the network pads to its window multiple itself
            tiling=ModelTiling.SUPPORTED,  # local filters and windows: tiles with overlap match the whole image
        )


def register() -> None:
    """Add freqnet to spandrel's main registry, ahead of every architecture (its detection is exact); idempotent."""
    if ARCH_ID in MAIN_REGISTRY:
        return
    others = tuple(support.architecture.id for support in MAIN_REGISTRY.architectures())
    MAIN_REGISTRY.add(ArchSupport.from_architecture(FreqNetArch(), before=others))


register()
