"""A feature map as attention tokens: pool, normalise, project with a 1x1 convolution, flatten."""
import torch.nn.functional as F
from torch import Tensor, nn

from mmdiff.utils.choices import check_choice

TOKEN_NORMS = ('map', 'token')


class MapTokenizer(nn.Module):
    """``(N, C, h, w)`` -> ``(N, g * g, D)`` tokens of a ``g`` x ``g`` grid.

    The map is adaptive-average-pooled to ``grid_size`` (it must be at least that large), normalised, and each
    position is projected to ``embed_dims`` by a 1x1 convolution. ``norm='map'`` is the diffssl reference's
    ``LayerNorm([C, g, g])`` over the whole pooled map (one affine weight per channel and position);
    ``norm='token'`` normalises each position over its channels.

    Args:
        in_channels (int): C.
        embed_dims (int): D.
        grid_size (int): g.
        norm (str): ``'map'`` or ``'token'``.
        name (str): Who owns it, for messages.
    """

    def __init__(self, in_channels: int, embed_dims: int, grid_size: int, norm: str, name: str) -> None:
        super().__init__()
        check_choice(f'{name}: norm', norm, TOKEN_NORMS)
        if isinstance(grid_size, bool) or not isinstance(grid_size, int) or grid_size < 1:
            raise ValueError(f'{name}: pool_size must be a positive integer grid size, got {grid_size!r}')
        self.in_channels = in_channels
        self.grid_size = grid_size
        self.norm_type = norm
        self.name = name
        self.norm = nn.LayerNorm([in_channels, grid_size, grid_size] if norm == 'map' else in_channels)
        self.projection = nn.Conv2d(in_channels, embed_dims, kernel_size=1)

    def forward(self, feature: Tensor) -> Tensor:
        if feature.shape[1] != self.in_channels:
            raise ValueError(f'{self.name}: in_channels={self.in_channels}, but the feature map has '
                             f'{feature.shape[1]} channels ({tuple(feature.shape)})')
        if min(feature.shape[-2:]) < self.grid_size:
            raise ValueError(f'{self.name}: pool_size {self.grid_size} is larger than the '
                             f'{tuple(feature.shape[-2:])} feature map; use pool_size <= the map size')
        pooled = F.adaptive_avg_pool2d(feature, self.grid_size)
        if self.norm_type == 'map':
            pooled = self.norm(pooled)
        else:
            pooled = self.norm(pooled.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.projection(pooled).flatten(2).transpose(1, 2)
