"""Optional bridges to other tools; the core never imports this package (each module needs its tool installed)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from enum import Enum


def import_spandrel() -> types.ModuleType:
    """spandrel, importable without torchvision. spandrel 0.4 imports two torchvision functions at import time for
    two architectures (LaMa, RestoreFormer) that freqnet never loads, and torchvision's wheel pulls a CUDA torch in,
    so a CPU set-up installs spandrel `--no-deps`. Where torchvision is absent, stand-ins (which raise if ever called)
    satisfy that one import and are removed again: nothing else in the process sees a fake torchvision."""
    if "spandrel" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        return importlib.import_module("spandrel")

    def unavailable(*args, **kwargs):
        raise NotImplementedError("this spandrel architecture needs torchvision, which is not installed")

    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode = Enum("InterpolationMode", "NEAREST BILINEAR BICUBIC")
    functional.rotate = functional.normalize = unavailable
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional
    torchvision = types.ModuleType("torchvision")
    torchvision.transforms = transforms
    stand_ins = {"torchvision": torchvision, "torchvision.transforms": transforms,
                 "torchvision.transforms.functional": functional}
    sys.modules.update(stand_ins)
    try:
        return importlib.import_module("spandrel")
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
