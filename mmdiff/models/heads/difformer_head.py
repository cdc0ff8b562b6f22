"""DifFormer: attention fusion of U-Net features from several blocks and several timesteps."""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead
from torch import Tensor, nn

from mmdiff.registry import MODELS, register_module

CROSS_TIMESTEP_FUSIONS = ('concat', 'attention')


def _transformer(embed_dims: int, num_heads: int, num_layers: int, mlp_ratio: float,
                 dropout: float) -> nn.TransformerEncoder:
    block = nn.TransformerEncoderLayer(embed_dims, num_heads, int(embed_dims * mlp_ratio), dropout,
                                       activation='gelu', batch_first=True, norm_first=True)
    return nn.TransformerEncoder(block, num_layers, enable_nested_tensor=False)


@register_module(MODELS)
class DifFormerHead(ClsHead):
    """DifFormer (Mukhopadhyay et al. 2023, "Do text-free diffusion models learn discriminative visual
    representations?"): one classifier over the features of several U-Net blocks at several timesteps.

    It reads a backbone with ``timestep_fusion='stack'``, whose outputs are one ``(N, T, C_b, h_b, w_b)`` tensor
    per tapped block b, all from one U-Net call. Each (block, t) map is average-pooled to ``pool_size`` x
    ``pool_size`` tokens, normalised and projected to ``embed_dims`` by a per-block linear layer, and given a
    learned per-block position embedding. Within each timestep a CLS token and the tokens of all blocks pass
    ``num_layers`` transformer blocks (shared by the timesteps): attention fuses the blocks. The T CLS outputs,
    each plus a learned timestep embedding, are then concatenated (``cross_timestep='concat'``) or attended by
    ``cross_layers`` more transformer blocks with their own CLS token (``'attention'``), and classified.

    Args:
        num_classes (int): Number of classes.
        in_channels (Sequence[int]): Channels of each backbone output, in output order (the backbone's
            ``out_channels``, or ``declared_out_channels(backbone_cfg)`` in a config).
        num_timesteps (int): T, the length of the backbone's ``timesteps``.
        embed_dims (int): Token width. Defaults to 256.
        num_heads (int): Attention heads; must divide ``embed_dims``. Defaults to 8.
        num_layers (int): Transformer blocks fusing the blocks of one timestep. Defaults to 1.
        pool_size (int): Each map is pooled to ``pool_size`` x ``pool_size`` tokens. Defaults to 1.
        cross_timestep (str): ``'concat'`` or ``'attention'``. Defaults to ``'concat'``.
        cross_layers (int): Transformer blocks of ``cross_timestep='attention'``. Defaults to 1.
        mlp_ratio (float): Hidden width of the blocks' MLP over ``embed_dims``. Defaults to 4.
        dropout (float): Dropout in the blocks. Defaults to 0.
        init_cfg (dict, optional): Defaults to a truncated-normal init of the linear layers.
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
                 pool_size: int = 1,
                 cross_timestep: str = 'concat',
                 cross_layers: int = 1,
                 mlp_ratio: float = 4.0,
                 dropout: float = 0.0,
                 init_cfg: Optional[dict] = dict(type='TruncNormal', layer='Linear', std=0.02),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes={num_classes} must be a positive integer')
        if isinstance(in_channels, int) or not in_channels:
            raise ValueError(f'in_channels must list the channels of each backbone output, got {in_channels!r}')
        if num_timesteps < 1 or pool_size < 1:
            raise ValueError(f'num_timesteps ({num_timesteps}) and pool_size ({pool_size}) must be >= 1')
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        if cross_timestep not in CROSS_TIMESTEP_FUSIONS:
            raise ValueError(f'cross_timestep={cross_timestep!r} is not supported; choose one of '
                             f'{list(CROSS_TIMESTEP_FUSIONS)}')
        self.num_classes = num_classes
        self.in_channels = tuple(in_channels)
        self.num_timesteps = num_timesteps
        self.pool_size = pool_size
        self.cross_timestep = cross_timestep
        self.projections = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(channels), nn.Linear(channels, embed_dims)) for channels in self.in_channels)
        num_tokens = len(self.in_channels) * pool_size**2
        self.token_embedding = nn.Parameter(torch.zeros(1, num_tokens, embed_dims))
        self.block_cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.block_fusion = _transformer(embed_dims, num_heads, num_layers, mlp_ratio, dropout)
        self.timestep_embedding = nn.Parameter(torch.zeros(1, num_timesteps, embed_dims))
        if cross_timestep == 'attention':
            self.timestep_cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
            self.timestep_fusion = _transformer(embed_dims, num_heads, cross_layers, mlp_ratio, dropout)
            classifier_width = embed_dims
        else:
            classifier_width = embed_dims * num_timesteps
        self.norm_out = nn.LayerNorm(classifier_width)
        self.fc = nn.Linear(classifier_width, num_classes)

    def init_weights(self) -> None:
        super().init_weights()
        for embedding in (self.token_embedding, self.timestep_embedding):
            nn.init.trunc_normal_(embedding, std=0.02)

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
        tokens = []
        for projection, feat in zip(self.projections, feats):
            pooled = F.adaptive_avg_pool2d(feat.flatten(0, 1), self.pool_size)  # (N * T, C, p, p)
            tokens.append(projection(pooled.flatten(2).transpose(1, 2)))  # (N * T, p * p, D)
        tokens = torch.cat(tokens, dim=1) + self.token_embedding
        tokens = torch.cat([self.block_cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        per_timestep = self.block_fusion(tokens)[:, 0].unflatten(0, (batch, self.num_timesteps))
        per_timestep = per_timestep + self.timestep_embedding  # (N, T, D)
        if self.cross_timestep == 'concat':
            return self.norm_out(per_timestep.flatten(1))
        sequence = torch.cat([self.timestep_cls_token.expand(batch, -1, -1), per_timestep], dim=1)
        return self.norm_out(self.timestep_fusion(sequence)[:, 0])

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        return self.fc(self.pre_logits(feats))
