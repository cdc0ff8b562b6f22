"""DiffusionTransformerBackbone: noised features of a diffusers diffusion transformer as an FPN-ready pyramid."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import Tensor

from mmdiff.registry import MODELS, register_module
from .core.diffusion_backbone import DiffusionBackbone
from .transformer.family import TransformerFamily
from .transformer.massive_channels import (NOT_CHOSEN, check_massive_channels, choose_massive_channels,
                                           initial_channels)
from .transformer.presets import TRANSFORMER_PRESETS
from .transformer.transformer_pass import TransformerPass


@register_module(MODELS)
class DiffusionTransformerBackbone(DiffusionBackbone):
    """Multi-scale features of a diffusion transformer (DiT, PixArt, SD3, FLUX, Sana), taken from noised VAE latents.

    The transformer family on the shared core (:class:`~mmdiff.models.backbones.core.DiffusionBackbone`, which
    documents every other argument, with the same meaning as for ``DiffusionUNetBackbone``). Every block is a tap,
    named by its module path (``'transformer_blocks.11'``, FLUX's ``'single_transformer_blocks.3'``) or numbered
    0 .. N - 1 over all blocks in forward order, negative numbers counting from the end (``out_blocks=(-1, )``: the
    last block). A tap is the block's image tokens (text tokens dropped) laid out on the token grid: stride 16 of
    the image for the published models (patch 2, or FLUX's 2x2 packing, on an 8x VAE; Sana: patch 1 on its 32x
    VAE, stride 32). By default the last block is resampled to the strides 4, 8, 16 and 32 (bilinear up,
    average-pooling down); ``pyramid='simple'`` makes them with ViTDet's trainable simple feature pyramid instead;
    name several blocks in ``out_blocks`` to take each at its own stride. The pass stops after the deepest tapped
    block.

    Args:
        arch (str | dict | None): A preset from :attr:`arch_settings` (``'dit-xl-2-256'``,
            ``'pixart-sigma-xl-2-1024'``, ``'sd35-medium'``, ``'flux-dev'``, ``'flux-schnell'``,
            ``'sana-1600m-1024'``, and ``'dit-tiny'``, ``'pixart-tiny'``, ``'sd3-tiny'``, ``'flux-tiny'``,
            ``'sana-tiny'`` with a few channels) or a dict of the transformer's keyword arguments with ``type``. With
            ``model_dir``, None takes the folder's transformer. Defaults to ``'dit-xl-2-256'``.
        guidance (float, optional): The distilled guidance scale a guidance-embedded FLUX model (FLUX.1-dev) is run
            with (its pipeline's default is 3.5); refused for other models. Defaults to None.
        modulated (bool): DiTF's AdaLN features (Gan et al. 2025): each tapped block's output as the norm after it
            hands it on, normalised and scaled and shifted by the AdaLN modulation of the current step, without
            the gate; after the last block, the model's output norm. Defaults to False (the raw block output).
        drop_massive_channels (int | Sequence[int]): DiTF's channel discard: zero these channels of each tapped
            output (before the modulation, as DiTF does), a count k of channels chosen as those with the largest
            mean absolute activation over the first batch the backbone sees (or :meth:`choose_massive_channels`),
            or the channels themselves (DiTF's for FLUX.1-dev: ``(154, 1446)``). Kept in the buffer
            ``massive_channels``, so a checkpoint replays them. Defaults to 0 (none).
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
    # the massive-activation channels are chosen for the backbone, not held by a model checkpoint
    new_layer_prefixes = DiffusionBackbone.new_layer_prefixes + ('massive_channels', )

    def __init__(self,
                 arch: Union[str, dict, None] = 'dit-xl-2-256',
                 guidance: Optional[float] = None,
                 modulated: bool = False,
                 drop_massive_channels: Union[int, Sequence[int]] = 0,
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
        self.modulated = bool(modulated)  # set first: the core builds the pass and freezes what it leaves unused
        super().__init__(arch=arch, out_strides=out_strides, resample_missing_strides=resample_missing_strides,
                         **kwargs)
        self.guidance = None if guidance is None else float(guidance)
        drop = check_massive_channels(drop_massive_channels, self.taps[0].channels)
        self.register_buffer('massive_channels', initial_channels(drop, len(self.pass_outputs)))
        # a Python flag, so that a traced or exported forward has no data-dependent branch; a loaded state sets it
        self.massive_channels_chosen = not isinstance(drop, int) or drop == 0
        self.register_load_state_dict_post_hook(self._after_loading)

    @staticmethod
    def _after_loading(module: 'DiffusionTransformerBackbone', incompatible_keys) -> None:
        """A loaded ``massive_channels`` buffer is chosen unless it still holds the not-chosen marker."""
        module.massive_channels_chosen = bool((module.massive_channels != NOT_CHOSEN).all())

    @property
    def pass_options(self) -> dict:
        """The pass returns modulated features when asked."""
        return dict(modulated=self.modulated)

    @torch.no_grad()
    def choose_massive_channels(self, inputs: Tensor, timesteps: Optional[Tensor] = None,
                                class_labels: Optional[Tensor] = None) -> Tensor:
        """Choose the channels ``drop_massive_channels`` zeroes from the calibration batch ``inputs``: per tap, those
        with the largest mean absolute activation of the raw block output (averaged over all processes).

        Args:
            inputs (Tensor): Images ``(N, C, H, W)`` in [-1, 1]; ``timesteps`` and ``class_labels`` as for
                :meth:`forward`.

        Returns:
            Tensor: The chosen channels ``(num_taps, k)``, also kept in the buffer ``massive_channels``.
        """
        sample, steps, conditions = self.prepare_inputs(inputs, timesteps, class_labels)
        with self.model_precision(inputs):
            raw = TransformerPass(self.model)(sample, steps, self.pass_outputs, **conditions)
        self.massive_channels.copy_(choose_massive_channels(raw, self.pass_outputs, self.massive_channels.shape[1]))
        self.massive_channels_chosen = True
        print_log(f'zeroing the massive-activation channels {self.massive_channels.tolist()} of '
                  f'{list(self.pass_outputs)}', logger='current')
        return self.massive_channels

    def forward(self, inputs: Tensor, timesteps: Optional[Tensor] = None,
                class_labels: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """The core's forward; the first batch chooses the channels ``drop_massive_channels`` zeroes."""
        if not self.massive_channels_chosen:
            self.choose_massive_channels(inputs, timesteps, class_labels)
        return super().forward(inputs, timesteps, class_labels)

    def run_model(self, sample: Tensor, timesteps: Tensor, conditions: dict) -> Dict[str, Tensor]:
        """The core's pass, with the massive-activation channels zeroed."""
        zeroed = (dict(zip(self.pass_outputs, self.massive_channels)) if self.massive_channels.shape[1] else None)
        return self.model_pass(sample, timesteps, self.pass_outputs, checkpointing=self.with_cp,
                               zeroed_channels=zeroed, **conditions)

    def conditions(self, batch_size: int, size: Tuple[int, int],
                   labels: Optional[Tensor]) -> Dict[str, Optional[Union[Tensor, Tuple[int, int], float]]]:
        """The core's conditions and FLUX's guidance scale."""
        return dict(super().conditions(batch_size, size, labels), guidance=self.guidance)
