"""Data: image I/O, MATLAB bicubic, blur kernels, degradations and recipes, datasets."""

from .datasets import HRFolderDataset, PairedFolderDataset, build_validation_set, extract_subimages
from .image_io import LoadedImage, UnreadableImage, list_images, read_image, read_rgb, write_image
from .recipes import NAMED_RECIPES, Degrader, modcrop, resolve_recipe
from .resize import imresize

__all__ = ["NAMED_RECIPES", "Degrader", "HRFolderDataset", "LoadedImage", "PairedFolderDataset", "UnreadableImage",
           "build_validation_set", "extract_subimages", "imresize", "list_images", "modcrop", "read_image",
           "read_rgb", "resolve_recipe", "write_image"]
