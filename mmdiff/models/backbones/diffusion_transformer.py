"""DiffusionTransformerBackbone: noised features of a diffusers diffusion transformer as an FPN-ready pyramid."""
from typing import Dict, Optional, Sequence, Tuple, Union

from torch import Tensor

from mmdiff.registry import MODELS, register_module
from .core.diffusion_backbone import DiffusionBackbone
from .transformer.family import TransformerFamily
from .transformer.presets import TRANSFORMER_PRESETS


@register_module(MODELS)
class DiffusionTransformerBackbone(DiffusionBackbone):
    """Multi-scale features of a diffusion transformer (DiT, PixArt, SD3, FLUX), taken from noised VAE latents.

    The transformer family on the shared core (:class:`~mmdiff.models.backbones.core.DiffusionBackbone`, which
    documents every other argument, with the same meaning as for ``DiffusionUNetBackbone``). Every block is a tap,
    named by its module path (``'transformer_blocks.11'``, FLUX's ``'single_transformer_blocks.3'``) or numbered
    0 .. N - 1 over all blocks in forward order, negative numbers counting from the end (``out_blocks=(-1, )``: the
    last block). A tap is the block's image tokens (text tokens dropped) laid out on the token grid: stride 16 of
    the image for the published models (patch 2, or FLUX's 2x2 packing, on an 8x VAE). By default the last block
    is resampled to the strides 4, 8, 16 and 32 (bilinear up, average-pooling down); name several blocks in
    ``out_blocks`` instead to take each at its own stride. The pass stops after the deepest tapped block.

    Args:
        arch (str | dict | None): A preset from :attr:`arch_settings` (``'dit-xl-2-256'``,
            ``'pixart-sigma-xl-2-1024'``, ``'sd35-medium'``, ``'flux-dev'``, ``'flux-schnell'``, and ``'dit-tiny'``,
            ``'pixart-tiny'``, ``'sd3-tiny'``, ``'flux-tiny'`` with a few channels) or a dict of the transformer's
            keyword arguments with ``type``. With ``model_dir``, None takes the folder's transformer. Defaults to
            ``'dit-xl-2-256'``.
        guidance (float, optional): The distilled guidance scale a guidance-embedded FLUX model (FLUX.1-dev) is run
            with (its pipeline's default is 3.5); refused for other models. Defaults to None.
        out_strides (Sequence[int], optional): Strides of the pyramid, each the last block resampled. Defaults
            to (4, 8, 16, 32).
        resample_missing_strides (bool): Resample the token stride to the others. Defaults to True.
        **kwargs: The arguments of :class:`~mmdiff.models.backbones.core.DiffusionBackbone`. A DiT runs with
            ``class_label`` (default: its null class, the unconditional model); PixArt, SD3 and FLUX take their
            text tokens (and SD3's and FLUX's pooled embedding) from ``context=dict(type='file', ...)``.

    Example:
        >>> import torch
        >>> self = DiffusionTransformerBackbone(arch='dit-tiny', vae='sd-tiny', timesteps=(100, ))
        >>> self.out_channels, self.out_strides
        ((16, 16, 16, 16), (4, 8, 16, 32))
        >>> [tuple(level.shape) for level in self(torch.rand(1, 3, 64, 64) * 2 - 1)]
        [(1, 16, 16, 16), (1, 16, 8, 8), (1, 16, 4, 4), (1, 16, 2, 2)]
    """
    family = TransformerFamily()
    arch_settings = TRANSFORMER_PRESETS

    def __init__(self,
                 arch: Union[str, dict, None] = 'dit-xl-2-256',
                 guidance: Optional[float] = None,
                 out_strides: Optional[Sequence[int]] = (4, 8, 16, 32),
                 resample_missing_strides: bool = True,
                 **kwargs) -> None:
        if kwargs.get('attention_maps') is not None:
            raise ValueError(f'attention_maps={kwargs["attention_maps"]!r} appends VPD\'s cross-attention maps of a '
                             f'U-Net\'s transformers; a diffusion transformer\'s blocks give none')
        source = self.family.resolve_model(arch, kwargs.get('model_dir'), for_build=True)  # configuration files only
        guided = self.family.model_inputs(source).guided
        if guided and guidance is None:
            raise ValueError(f'the {source.class_name} is guidance-distilled (guidance_embeds=True, as FLUX.1-dev): '
                             f'give guidance=, the scale its pipeline runs it with (3.5 by default)')
        if not guided and guidance is not None:
            raise ValueError(f'guidance={guidance} was given, but the {source.class_name} has no guidance embedding '
                             f'(guidance_embeds is off, as for FLUX.1-schnell); leave guidance=None')
        super().__init__(arch=arch, out_strides=out_strides, resample_missing_strides=resample_missing_strides,
                         **kwargs)
        self.guidance = None if guidance is None else float(guidance)

    def conditions(self, batch_size: int, size: Tuple[int, int],
                   labels: Optional[Tensor]) -> Dict[str, Optional[Union[Tensor, Tuple[int, int], float]]]:
        """The core's conditions and FLUX's guidance scale."""
        return dict(super().conditions(batch_size, size, labels), guidance=self.guidance)
