"""MLP classifier on pooled feature maps."""
from typing import Tuple, Union

from torch import nn

from mmdiff.registry import MODELS, register_module
from .linear_probe_head import LinearProbeHead


@register_module(MODELS)
class MLPHead(LinearProbeHead):
    """Pool like :class:`LinearProbeHead`, then classify with Linear-ReLU-Dropout-Linear.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the chosen backbone output.
        hidden_channels (int): Width of the hidden layer. Defaults to 1024.
        dropout (float): Dropout before the output layer. Defaults to 0.5.
        pool_size (int | tuple[int, int]): Pooled grid. Defaults to 2.
        **kwargs: Other :class:`LinearProbeHead` and ``ClsHead`` arguments.

    Example:
        >>> import torch
        >>> head = MLPHead(num_classes=10, in_channels=8, hidden_channels=32)
        >>> head((torch.rand(4, 8, 16, 16), )).shape
        torch.Size([4, 10])
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 hidden_channels: int = 1024,
                 dropout: float = 0.5,
                 pool_size: Union[int, Tuple[int, int]] = 2,
                 **kwargs) -> None:
        self.hidden_channels = hidden_channels
        self.dropout = dropout
        super().__init__(num_classes, in_channels, pool_size=pool_size, **kwargs)

    def _build_classifier(self, in_features: int) -> nn.Module:
        return nn.Sequential(
            nn.Linear(in_features, self.hidden_channels), nn.ReLU(inplace=True), nn.Dropout(self.dropout),
            nn.Linear(self.hidden_channels, self.num_classes))
