"""ViTDet's simple feature pyramid (Li et al. 2022, "Exploring Plain Vision Transformer Backbones for Object
Detection"): the levels at strides 4, 8, 16 and 32 of a plain transformer, made from its one stride-16 map.

Each scale is detectron2's ``SimpleFeaturePyramid`` stage (``detectron2/modeling/backbone/vit.py``) up to its output
convolutions: x4 is a 2x2 transposed convolution to half the channels, a channel LayerNorm, GELU and a second one to
a quarter; x2 one transposed convolution to half; x1 the map itself; x1/2 a 2x2 max-pool. The 1x1 and 3x3 output
convolutions of ViTDet's stages are the neck's (an FPN's lateral and output convolutions).
"""
from torch import Tensor, nn

# source stride / output stride -> what the level's channels become (ViTDet's out_dim)
SIMPLE_SCALES = {4.0: 0.25, 2.0: 0.5, 1.0: 1.0, 0.5: 1.0}


class LayerNorm2d(nn.Module):
    """A LayerNorm over the channels of a ``(N, C, H, W)`` map (detectron2's ``LayerNorm``, ViTDet's ``'LN'``).

    Args:
        channels (int): C.
        eps (float): Added to the variance. Defaults to 1e-6.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, feature: Tensor) -> Tensor:
        return self.norm(feature.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def simple_scale(channels: int, scale: float) -> nn.Module:
    """ViTDet's stage for one scale factor, without its output convolutions.

    Args:
        channels (int): Channels of the stride-s map.
        scale (float): Output resolution over input resolution: 4, 2, 1 or 0.5 (the keys of :data:`SIMPLE_SCALES`).

    Returns:
        nn.Module: ``(N, C, h, w)`` -> ``(N, C * SIMPLE_SCALES[scale], h * scale, w * scale)`` (max-pooling rounds
        up, so an odd map keeps its last row and column).
    """
    if scale == 4.0:
        return nn.Sequential(
            nn.ConvTranspose2d(channels, channels // 2, kernel_size=2, stride=2), LayerNorm2d(channels // 2),
            nn.GELU(), nn.ConvTranspose2d(channels // 2, channels // 4, kernel_size=2, stride=2))
    if scale == 2.0:
        return nn.ConvTranspose2d(channels, channels // 2, kernel_size=2, stride=2)
    if scale == 1.0:
        return nn.Identity()
    return nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)
