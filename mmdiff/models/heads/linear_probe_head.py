"""Linear probe on adaptive-average-pooled feature maps (the diffssl papers' linear head)."""
from typing import Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from mmdiff.registry import MODELS, register_module
from mmdiff.utils.pretrained_init import SafePretrainedInit
from .feature_selection import select_feature


@register_module(MODELS)
class LinearProbeHead(SafePretrainedInit, ClsHead):
    """Adaptive-average-pool a feature map to ``pool_size``, flatten it and classify it with one linear layer.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the chosen backbone output.
        pool_size (int | tuple[int, int]): Pooled grid (h, w); must not exceed the feature map. Defaults to 2.
        in_index (int): Which backbone output to use. Defaults to -1 (the last).
        init_cfg (dict, optional): Defaults to a Normal(std=0.01) init of the linear layer.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of :class:`mmpretrain.models.ClsHead`.

    Example:
        >>> import torch
        >>> head = LinearProbeHead(num_classes=10, in_channels=8, pool_size=2)
        >>> head((torch.rand(4, 8, 16, 16), )).shape
        torch.Size([4, 10])
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 pool_size: Union[int, Tuple[int, int]] = 2,
                 in_index: int = -1,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.pool_size = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
        if len(self.pool_size) != 2 or min(self.pool_size) < 1:
            raise ValueError(f'pool_size must be a positive int or (h, w) pair, got {pool_size!r}')
        self.in_index = in_index
        self.fc = self._build_classifier(in_channels * self.pool_size[0] * self.pool_size[1])

    def _build_classifier(self, in_features: int) -> nn.Module:
        return nn.Linear(in_features, self.num_classes)

    def pre_logits(self, feats: Sequence[Tensor]) -> Tensor:
        """Pool the chosen output to ``(N, C * ph * pw)``."""
        feature = select_feature(feats, self.in_index, type(self).__name__)
        if feature.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__}: in_channels={self.in_channels}, but backbone output '
                             f'{self.in_index} has {feature.shape[1]} channels')
        if feature.shape[-2] < self.pool_size[0] or feature.shape[-1] < self.pool_size[1]:
            raise ValueError(f'{type(self).__name__}: pool_size {self.pool_size} is larger than the '
                             f'{tuple(feature.shape[-2:])} feature map of backbone output {self.in_index}; use a '
                             f'smaller pool_size or a block with a smaller stride')
        return F.adaptive_avg_pool2d(feature, self.pool_size).flatten(1)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        return self.fc(self.pre_logits(feats))
