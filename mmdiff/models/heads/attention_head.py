"""Attention head: the feature map as tokens with a CLS token, a few transformer blocks, CLS -> classes."""
from typing import Optional, Sequence

import torch
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from mmdiff.registry import MODELS, register_module
from mmdiff.utils.pretrained_init import SafePretrainedInit
from .feature_selection import select_feature
from .map_tokenizer import MapTokenizer
from .transformer_block import transformer_blocks


@register_module(MODELS)
class AttentionHead(SafePretrainedInit, ClsHead):
    """The diffssl papers' attention head (``--head_type attention`` on one block and one timestep).

    The chosen map is pooled to ``pool_size`` x ``pool_size``, normalised and projected to ``embed_dims`` tokens
    (:class:`MapTokenizer`); a learned CLS token is prepended, ``num_layers`` pre-norm transformer blocks attend,
    and a linear classifier reads the CLS token.

    The published head (diffssl ``scripts/attention.sh``: block 24 at 16x16) is ``pool_size=16, norm='map',
    embed_dims=1024, num_heads=8, num_layers=2, qkv_bias=False, final_norm=False`` with ``init_cfg=None``
    (PyTorch's default initialisation): 27,786,216 parameters for 1000 classes. mmdiff's lighter variant
    (``configs/classification_heads/attention-head-lite_*``) is ``pool_size=8, norm='token', embed_dims=512,
    qkv_bias=True, final_norm=True``.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the chosen backbone output.
        embed_dims (int): Token width. Defaults to 256.
        num_heads (int): Attention heads; must divide ``embed_dims``. Defaults to 8.
        num_layers (int): Transformer blocks. Defaults to 2.
        mlp_ratio (float): Hidden width of the blocks' MLP over ``embed_dims``. Defaults to 4.
        pool_size (int): The map is adaptive-average-pooled to this grid; it must not exceed the map. Defaults to 8.
        norm (str): ``'map'``: LayerNorm over the whole pooled ``(C, g, g)`` map (the reference);
            ``'token'``: per-token LayerNorm over channels. Defaults to ``'token'``.
        qkv_bias (bool): Bias of the attention's qkv projection. Defaults to True.
        final_norm (bool): LayerNorm on the CLS token before the classifier. Defaults to True.
        dropout (float): Dropout in the blocks. Defaults to 0.
        in_index (int): Which backbone output to use. Defaults to -1.
        init_cfg (dict, optional): Defaults to a truncated-normal init of the linear layers; None keeps
            PyTorch's defaults.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of :class:`mmpretrain.models.ClsHead`.

    Example:
        >>> import torch
        >>> head = AttentionHead(num_classes=10, in_channels=8, embed_dims=16, num_heads=2, pool_size=4)
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
                 pool_size: int = 8,
                 norm: str = 'token',
                 qkv_bias: bool = True,
                 final_norm: bool = True,
                 dropout: float = 0.0,
                 in_index: int = -1,
                 init_cfg: Optional[dict] = dict(type='TruncNormal', layer='Linear', std=0.02),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.num_classes = num_classes
        self.in_index = in_index
        self.tokenizer = MapTokenizer(in_channels, embed_dims, pool_size, norm, type(self).__name__)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.blocks = transformer_blocks(num_layers, embed_dims, num_heads, mlp_ratio, qkv_bias, dropout)
        self.norm_out = nn.LayerNorm(embed_dims) if final_norm else nn.Identity()
        self.fc = nn.Linear(embed_dims, num_classes)

    def pre_logits(self, feats: Sequence[Tensor]) -> Tensor:
        """Tokenise the chosen output, attend, and return the CLS token ``(N, embed_dims)``."""
        tokens = self.tokenizer(select_feature(feats, self.in_index, type(self).__name__))  # (N, g * g, D)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        return self.norm_out(self.blocks(tokens)[:, 0])

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        return self.fc(self.pre_logits(feats))
