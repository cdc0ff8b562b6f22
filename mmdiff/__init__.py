"""mmdiff: pre-trained diffusion U-Nets as OpenMMLab backbones.

Importing ``mmdiff`` is cheap: it needs torch, diffusers and mmengine only, and never imports mmdet, mmseg or
mmpretrain. Configs reach the models with ``custom_imports=dict(imports=['mmdiff'], allow_failed_imports=False)``,
which registers them (see :mod:`mmdiff.registry`).
"""
from .version import __version__
from .config_paths import get_config_path, list_configs
from .utils.safe_checkpoint import register_safe_checkpoint_loader
from . import engine, models  # noqa: F401,E402  registers the hooks and the models

# every checkpoint mmengine reads in a process that imported mmdiff is unpickled with weights_only=True
register_safe_checkpoint_loader()

__all__ = ['__version__', 'get_config_path', 'list_configs']
