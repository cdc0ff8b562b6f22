"""mmdiff: pre-trained diffusion U-Nets as OpenMMLab backbones.

Importing ``mmdiff`` is cheap: it needs torch, diffusers and mmengine only, and never imports mmdet, mmseg or
mmpretrain. Configs reach the models with ``custom_imports=dict(imports=['mmdiff'], allow_failed_imports=False)``,
which registers them (see :mod:`mmdiff.registry`). Importing it changes nothing else in the process: mmengine's
checkpoint loading stays as it is unless ``MMDIFF_SAFE_LOADING=1`` opts the process into mmdiff's safe loader
(:mod:`mmdiff.utils.safe_checkpoint`), as mmdiff's own tools and backbones always load.
"""
from .version import __version__
from .config_paths import get_config_path, list_configs
from .utils.safe_checkpoint import enable_safe_loading, safe_loading_requested
from . import engine, models  # noqa: F401,E402  registers the hooks and the models

# importing mmdiff leaves mmengine's checkpoint loading as it is, unless the process opted in (MMDIFF_SAFE_LOADING=1)
if safe_loading_requested():
    enable_safe_loading()

__all__ = ['__version__', 'get_config_path', 'list_configs']
