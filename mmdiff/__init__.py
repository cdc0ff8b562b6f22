"""mmdiff: pre-trained diffusion U-Nets as OpenMMLab backbones.

Importing ``mmdiff`` is cheap: it needs torch, diffusers and mmengine only, and never imports mmdet, mmseg or
mmpretrain. Configs reach the models with ``custom_imports=dict(imports=['mmdiff'], allow_failed_imports=False)``,
which registers them (see :mod:`mmdiff.registry`).
"""
from .version import __version__
from . import engine, models  # noqa: F401,E402  registers the hooks and the models

__all__ = ['__version__']
