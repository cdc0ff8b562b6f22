"""Attention head: the feature map as tokens with a CLS token, a few transformer blocks, CLS -> classes."""
from typing import Optional, Sequence

import torch
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from mmdiff.registry import MODELS, register_module
from .feature_selection import select_feature


@register_module(MODELS)
class AttentionHead(ClsHead):
    """The diffssl papers' attention head.

    LayerNorm over channels, a 1x1 projection to ``embed_dims``, the ``h * w`` positions as tokens after a
    learned CLS token, ``num_layers`` pre-norm transformer blocks, and a linear classifier on the CLS token.
    ``pool_stride`` > 1 average-pools the map first, to shorten the sequence.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the chosen backbone output.
        embed_dims (int): Token width. Defaults to 256.
        num_heads (int): Attention heads; must divide ``embed_dims``. Defaults to 8.
        num_layers (int): Transformer blocks. Defaults to 2.
        mlp_ratio (float): Hidden width of the blocks' MLP over ``embed_dims``. Defaults to 4.
        pool_stride (int): Average-pooling stride before tokenising. Defaults to 1.
        dropout (float): Dropout in the blocks. Defaults to 0.
        in_index (int): Which backbone output to use. Defaults to -1.
        init_cfg (dict, optional): Defaults to a truncated-normal init of the linear layers.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of :class:`mmpretrain.models.ClsHead`.

    Example:
        >>> import torch
        >>> head = AttentionHead(num_classes=10, in_channels=8, embed_dims=16, num_heads=2)
        >>> head((torch.rand(4, 8, 6, 6), )).shape
        torch.Size([4, 10])
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_layers: int = 2,
                 mlp_ratio: float = 4.0,
                 pool_stride: int = 1,
                 dropout: float = 0.0,
                 in_index: int = -1,
                 init_cfg: Optional[dict] = dict(type='TruncNormal', layer='Linear', std=0.02),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        if pool_stride < 1:
            raise ValueError(f'pool_stride must be >= 1, got {pool_stride}')
        self.num_classes = num_classes
        self.in_index = in_index
        self.pool = nn.AvgPool2d(pool_stride) if pool_stride > 1 else nn.Identity()
        self.norm_in = nn.LayerNorm(in_channels)
        self.projection = nn.Conv2d(in_channels, embed_dims, kernel_size=1)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        block = nn.TransformerEncoderLayer(embed_dims, num_heads, int(embed_dims * mlp_ratio), dropout,
                                           activation='gelu', batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, num_layers, enable_nested_tensor=False)
        self.norm_out = nn.LayerNorm(embed_dims)
        self.fc = nn.Linear(embed_dims, num_classes)

    def pre_logits(self, feats: Sequence[Tensor]) -> Tensor:
        """Tokenise the chosen output, attend, and return the CLS token ``(N, embed_dims)``."""
        feature = self.pool(select_feature(feats, self.in_index, type(self).__name__))
        feature = self.norm_in(feature.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        tokens = self.projection(feature).flatten(2).transpose(1, 2)  # (N, h * w, embed_dims)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return self.norm_out(self.blocks(tokens)[:, 0])

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        return self.fc(self.pre_logits(feats))
