"""A stand-in backbone for features read from a feature cache."""
from typing import Tuple

from mmengine.model import BaseModule
from torch import Tensor

from mmdiff.registry import MODELS, register_module


@register_module(MODELS)
class CachedFeatureBackbone(BaseModule):
    """Return the inputs as the single backbone output: the features were computed once and cached on disk.

    Pair it with ``CachedFeatureDataset``, whose samples are backbone features instead of images.

    Example:
        >>> import torch
        >>> [tuple(f.shape) for f in CachedFeatureBackbone()(torch.rand(2, 8, 4, 4))]
        [(2, 8, 4, 4)]
    """

    def forward(self, inputs: Tensor) -> Tuple[Tensor]:
        return (inputs, )
