"""Training losses and the LPIPS metric."""

from .gan import GAN_TYPES, discriminator_loss, generator_loss
from .perceptual import LPIPS, PerceptualLoss
from .pixel import CharbonnierLoss, FFTLoss, L1Loss, LumaL1Loss, MSELoss, MSSSIMLoss, SSIMLoss

__all__ = ["GAN_TYPES", "LPIPS", "CharbonnierLoss", "FFTLoss", "L1Loss", "LumaL1Loss", "MSELoss", "MSSSIMLoss",
           "PerceptualLoss", "SSIMLoss", "discriminator_loss", "generator_loss"]
