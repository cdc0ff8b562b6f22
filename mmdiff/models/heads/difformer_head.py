"""DifFormer: attention fusion of U-Net features from several blocks and several timesteps."""
from typing import Optional, Sequence, Union

import torch
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from mmdiff.registry import MODELS, register_module
from mmdiff.utils.choices import check_choice
from mmdiff.utils.pretrained_init import SafePretrainedInit, is_pretrained
from .map_tokenizer import MapTokenizer
from .transformer_block import transformer_blocks

CROSS_TIMESTEP_FUSIONS = ('concat', 'attention')


@register_module(MODELS)
class DifFormerHead(SafePretrainedInit, ClsHead):
    """DifFormer (Mukhopadhyay et al. 2023, "Do text-free diffusion models learn discriminative visual
    representations?"): one classifier over the features of several U-Net blocks at several timesteps.

    It reads a backbone with ``timestep_fusion='stack'``, whose outputs are one ``(N, T, C_b, h_b, w_b)`` tensor
    per tapped block b, all from one U-Net call. Each (block, t) map becomes ``g_b`` x ``g_b`` tokens
    (:class:`MapTokenizer`, one per block, shared by the timesteps), optionally plus a learned per-token position
    embedding. Within each timestep a CLS token and the tokens of all blocks pass ``num_layers`` transformer
    blocks, shared by the timesteps: attention fuses the blocks. The T CLS outputs (each optionally plus a learned
    timestep embedding) are concatenated (``cross_timestep='concat'``) or attended by ``cross_layers`` more
    blocks with their own CLS token (``'attention'``), and classified.

    The published DifFormer (diffssl ``scripts/fusion.sh``: blocks 19, 24, 30 x t = 90, 150, 300 of ADM-256,
    ``pre_pool_size=16``) is ``pool_size=(16, 16, 8)`` for the outputs in stride order (blocks 30, 24, 19:
    min(map size, 16)), ``norm='map', embed_dims=1024, num_heads=8, num_layers=2, qkv_bias=False,
    position_embedding=False, timestep_embedding=False, final_norm=False, cross_timestep='concat'`` with
    ``init_cfg=None``: 31,802,344 parameters for 1000 classes. Without position embeddings the attention does not
    depend on the order of the blocks' tokens.

    Args:
        num_classes (int): Number of classes.
        in_channels (Sequence[int]): Channels of each backbone output, in output order (the backbone's
            ``out_channels``).
        num_timesteps (int): T, the length of the backbone's ``timesteps``.
        embed_dims (int): Token width. Defaults to 256.
        num_heads (int): Attention heads; must divide ``embed_dims``. Defaults to 8.
        num_layers (int): Transformer blocks fusing the blocks of one timestep. Defaults to 1.
        pool_size (int | Sequence[int]): Token grid of each output (one value for all, or one per output);
            a grid must not exceed its map. Defaults to 1.
        norm (str): ``'map'`` (LayerNorm over each pooled ``(C, g, g)`` map, the reference) or ``'token'``.
            Defaults to ``'token'``.
        qkv_bias (bool): Bias of the attention's qkv projection. Defaults to True.
        position_embedding (bool): A learned embedding per token position. Defaults to True.
        timestep_embedding (bool): A learned embedding per timestep, added to its CLS output. Defaults to True.
        final_norm (bool): LayerNorm before the classifier. Defaults to True.
        cross_timestep (str): ``'concat'`` or ``'attention'``. Defaults to ``'concat'``.
        cross_layers (int): Transformer blocks of ``cross_timestep='attention'``. Defaults to 1.
        mlp_ratio (float): Hidden width of the blocks' MLP over ``embed_dims``. Defaults to 4.
        dropout (float): Dropout in the blocks. Defaults to 0.
        init_cfg (dict, optional): Defaults to a truncated-normal init of the linear layers; None keeps
            PyTorch's defaults.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of :class:`mmpretrain.models.ClsHead`.

    Example:
        >>> import torch
        >>> head = DifFormerHead(num_classes=10, in_channels=(8, 16), num_timesteps=3, embed_dims=16, num_heads=2)
        >>> feats = (torch.rand(4, 3, 8, 8, 8), torch.rand(4, 3, 16, 4, 4))
        >>> head(feats).shape
        torch.Size([4, 10])
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 num_timesteps: int,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 num_layers: int = 1,
                 pool_size: Union[int, Sequence[int]] = 1,
                 norm: str = 'token',
                 qkv_bias: bool = True,
                 position_embedding: bool = True,
                 timestep_embedding: bool = True,
                 final_norm: bool = True,
                 cross_timestep: str = 'concat',
                 cross_layers: int = 1,
                 mlp_ratio: float = 4.0,
                 dropout: float = 0.0,
                 init_cfg: Optional[dict] = dict(type='TruncNormal', layer='Linear', std=0.02),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        name = type(self).__name__
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        if isinstance(in_channels, int) or not in_channels:
            raise ValueError(f'in_channels must list the channels of each backbone output, got {in_channels!r}')
        if num_timesteps < 1:
            raise ValueError(f'num_timesteps must be >= 1, got {num_timesteps}')
        grids = (pool_size, ) * len(in_channels) if isinstance(pool_size, int) else tuple(pool_size)
        if len(grids) != len(in_channels):
            raise ValueError(f'pool_size gives {len(grids)} grids for {len(in_channels)} outputs '
                             f'(in_channels={tuple(in_channels)}); give one int or one per output')
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        check_choice('cross_timestep', cross_timestep, CROSS_TIMESTEP_FUSIONS)
        self.num_classes = num_classes
        self.in_channels = tuple(in_channels)
        self.num_timesteps = num_timesteps
        self.cross_timestep = cross_timestep
        self.tokenizers = nn.ModuleList(
            MapTokenizer(channels, embed_dims, grid, norm, f'{name} output {index}')
            for index, (channels, grid) in enumerate(zip(self.in_channels, grids)))
        num_tokens = sum(grid**2 for grid in grids)
        self.token_embedding = nn.Parameter(torch.zeros(1, num_tokens, embed_dims)) if position_embedding else None
        self.timestep_embedding = (nn.Parameter(torch.zeros(1, num_timesteps, embed_dims))
                                   if timestep_embedding else None)
        self.block_cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.block_fusion = transformer_blocks(num_layers, embed_dims, num_heads, mlp_ratio, qkv_bias, dropout)
        if cross_timestep == 'attention':
            self.timestep_cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
            self.timestep_fusion = transformer_blocks(cross_layers, embed_dims, num_heads, mlp_ratio, qkv_bias,
                                                      dropout)
            classifier_width = embed_dims
        else:
            classifier_width = embed_dims * num_timesteps
        self.norm_out = nn.LayerNorm(classifier_width) if final_norm else nn.Identity()
        self.fc = nn.Linear(classifier_width, num_classes)

    def init_weights(self) -> None:
        if not is_pretrained(self.init_cfg):  # a checkpoint holds the embeddings too
            for embedding in (self.token_embedding, self.timestep_embedding):
                if embedding is not None:
                    nn.init.trunc_normal_(embedding, std=0.02)
        super().init_weights()

    def _check_feats(self, feats: Sequence[Tensor]) -> None:
        if len(feats) != len(self.in_channels):
            raise ValueError(f'DifFormerHead: in_channels lists {len(self.in_channels)} outputs, but the backbone '
                             f'gave {len(feats)}')
        for index, (feat, channels) in enumerate(zip(feats, self.in_channels)):
            if feat.dim() != 5:
                raise ValueError(f"DifFormerHead takes the (N, T, C, h, w) outputs of timestep_fusion='stack', got "
                                 f'{tuple(feat.shape)} from backbone output {index}')
            if feat.shape[1:3] != (self.num_timesteps, channels):
                raise ValueError(f'DifFormerHead: backbone output {index} has (T, C) = {tuple(feat.shape[1:3])}, '
                                 f'expected ({self.num_timesteps}, {channels}) from num_timesteps and in_channels')

    def pre_logits(self, feats: Sequence[Tensor]) -> Tensor:
        """Fuse the blocks per timestep, then the timesteps: ``(N, embed_dims * T)`` or ``(N, embed_dims)``."""
        self._check_feats(feats)
        batch = feats[0].shape[0]
        tokens = torch.cat([tokenizer(feat.flatten(0, 1)) for tokenizer, feat in zip(self.tokenizers, feats)],
                           dim=1)  # (N * T, sum of g * g, D)
        if self.token_embedding is not None:
            tokens = tokens + self.token_embedding
        tokens = torch.cat([self.block_cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        per_timestep = self.block_fusion(tokens)[:, 0].unflatten(0, (batch, self.num_timesteps))  # (N, T, D)
        if self.timestep_embedding is not None:
            per_timestep = per_timestep + self.timestep_embedding
        if self.cross_timestep == 'concat':
            return self.norm_out(per_timestep.flatten(1))
        sequence = torch.cat([self.timestep_cls_token.expand(batch, -1, -1), per_timestep], dim=1)
        return self.norm_out(self.timestep_fusion(sequence)[:, 0])

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        return self.fc(self.pre_logits(feats))
