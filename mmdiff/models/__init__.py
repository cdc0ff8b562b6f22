"""mmdiff models; importing this package registers them. Needs torch, diffusers and mmengine only."""
from .backbones import DiffusionUNetBackbone

__all__ = ['DiffusionUNetBackbone']
