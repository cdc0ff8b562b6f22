"""DiffusionUNetBackbone: noised multi-scale features from a diffusers U-Net."""
from typing import Union

from mmdiff.registry import MODELS, register_module
from .core.diffusion_backbone import DiffusionBackbone
from .unet.family import UNetFamily
from .unet.presets import UNET_PRESETS


@register_module(MODELS)
class DiffusionUNetBackbone(DiffusionBackbone):
    """Multi-scale features of a denoising U-Net, taken from noised images (or noised VAE latents).

    The U-Net family on the shared core (:class:`~mmdiff.models.backbones.core.DiffusionBackbone`, which documents
    every other argument): guided-diffusion's ADM and DDPM U-Nets (``UNet2DModel``) and the latent U-Nets of
    Stable Diffusion 1.x / 2.x and XL (``UNet2DConditionModel``, SDXL with its added text-time conditioning). Its
    taps are every block, resnet, attention and resampler of the U-Net, named as in the U-Net
    (``'up_blocks.1.attentions.1'``) or numbered as guided-diffusion's blocks are (diffssl, 1-based: 24 is the
    papers' block); ``out_strides`` takes the decoder's last layer at each stride.

    Args:
        arch (str | dict | None): A preset from :attr:`arch_settings` (``'adm-256u'``: guided-diffusion's
            ImageNet 256x256 unconditional U-Net, ``'adm-tiny'``: its six-level layout with a few channels;
            ``'sd15'``: Stable Diffusion 1.5's latent U-Net, ``'sdxl-base'``: SDXL-base-1.0's, ``'sd-tiny'`` and
            ``'sdxl-tiny'``: their layouts with a few channels) or a
            dict of U-Net keyword arguments, with ``type='UNet2DConditionModel'`` for a text-conditioned U-Net
            (default ``'UNet2DModel'``). With ``model_dir``, None takes the folder's architecture; a preset or
            dict is then checked against it. Defaults to ``'adm-256u'``.
        **kwargs: The arguments of :class:`~mmdiff.models.backbones.core.DiffusionBackbone`.

    Example:
        >>> import torch
        >>> from mmdiff.models import DiffusionUNetBackbone
        >>> self = DiffusionUNetBackbone(arch='adm-tiny', timesteps=(90, 150))
        >>> self.out_channels, self.out_strides
        ((64, 64, 128, 128), (4, 8, 16, 32))
        >>> for level in self(torch.rand(1, 3, 32, 32) * 2 - 1):
        ...     print(tuple(level.shape))
        (1, 64, 8, 8)
        (1, 64, 4, 4)
        (1, 128, 2, 2)
        (1, 128, 1, 1)
    """
    family = UNetFamily()
    arch_settings = UNET_PRESETS

    def __init__(self, arch: Union[str, dict, None] = 'adm-256u', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)
