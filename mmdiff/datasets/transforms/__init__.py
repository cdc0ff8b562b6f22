"""Data transforms of mmdiff's pipelines (torch-free; registered in :data:`mmdiff.registry.TRANSFORMS`)."""
from .adm_resize_crop import ADMResizeCrop

__all__ = ['ADMResizeCrop']
