"""mmdiff models; importing this package registers them. Needs torch, diffusers and mmengine only."""
from .backbones import DiffusionUNetBackbone
from .distillers import RepFusionDistiller, TimestepPolicy
from .pretrainers import DiffusionPretrainer

__all__ = ['DiffusionUNetBackbone', 'DiffusionPretrainer', 'RepFusionDistiller', 'TimestepPolicy']
