"""Architecture modules of HybridMoE-FreqNet, one file per module of the draft."""

from .network import ARCHITECTURE, HybridMoEFreqNet

__all__ = ["ARCHITECTURE", "HybridMoEFreqNet"]
