"""A small CNN classifier on a feature map."""
from typing import Optional, Sequence

from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from mmdiff.registry import MODELS, register_module
from mmdiff.utils.pretrained_init import SafePretrainedInit
from .feature_selection import select_feature


@register_module(MODELS)
class CNNHead(SafePretrainedInit, ClsHead):
    """Conv3x3-BN-ReLU layers (the first with stride 2), global average pooling and a linear classifier.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the chosen backbone output.
        channels (Sequence[int]): Width of each conv layer. Defaults to (256, 256).
        in_index (int): Which backbone output to use. Defaults to -1.
        init_cfg (dict, optional): Defaults to Kaiming convs and a Normal(std=0.01) linear layer.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of :class:`mmpretrain.models.ClsHead`.

    Example:
        >>> import torch
        >>> head = CNNHead(num_classes=10, in_channels=8, channels=(16, 16))
        >>> head((torch.rand(4, 8, 16, 16), )).shape
        torch.Size([4, 10])
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 channels: Sequence[int] = (256, 256),
                 in_index: int = -1,
                 init_cfg: Optional[list] = [
                     dict(type='Kaiming', layer='Conv2d'),
                     dict(type='Normal', layer='Linear', std=0.01)
                 ],
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        if not channels:
            raise ValueError('channels is empty; give the width of at least one conv layer')
        self.num_classes = num_classes
        self.in_index = in_index
        layers = []
        for index, width in enumerate(channels):
            layers += [
                nn.Conv2d(in_channels, width, 3, stride=2 if index == 0 else 1, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True)
            ]
            in_channels = width
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(in_channels, num_classes)

    def pre_logits(self, feats: Sequence[Tensor]) -> Tensor:
        """Convolve the chosen output and average it to ``(N, channels[-1])``."""
        return self.convs(select_feature(feats, self.in_index, type(self).__name__)).mean((2, 3))

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        return self.fc(self.pre_logits(feats))
