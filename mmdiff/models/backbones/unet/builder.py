"""The diffusers U-Nets mmdiff drives: resolved from a preset, a dict or a local folder, checked, and built.

An ``arch`` is a preset name of :data:`UNET_PRESETS`, a dict of U-Net keyword arguments (with
``type='UNet2DConditionModel'`` for a text-conditioned U-Net) or None to take a local diffusers folder's U-Net.
A ``model_dir`` is a model folder (``config.json`` + weights) or a pipeline folder (``unet/``, ``scheduler/`` and,
for latent diffusion, ``vae/``); it is always read with ``local_files_only=True``.
"""
from typing import Mapping, Optional, Union

from diffusers import UNet2DConditionModel, UNet2DModel
from torch import nn

from ..core.family import ModelSource
from ..core.sources import build_model_source, resolve_model_source
from .presets import UNET_PRESETS

UNET_TYPES = {'UNet2DModel': UNet2DModel, 'UNet2DConditionModel': UNet2DConditionModel}
# the added conditioning mmdiff feeds (SDXL's pooled text embedding and time ids)
ADDITION_EMBED_TYPES = (None, 'text_time')


def check_supported(unet_type: str, config: Mapping) -> None:
    """Refuse U-Net variants whose inputs mmdiff does not drive, from the U-Net's full config (the block types are
    checked where the taps are listed)."""
    if config['center_input_sample']:
        raise ValueError('the U-Net has center_input_sample=True (it expects [0, 1] inputs); mmdiff feeds it '
                         'images in [-1, 1], so use a U-Net configured with center_input_sample=False')
    added = {key: config.get(key) for key in ('encoder_hid_dim_type', 'class_embed_type', 'class_embeddings_concat')
             if config.get(key)}
    if config.get('addition_embed_type') not in ADDITION_EMBED_TYPES:
        added['addition_embed_type'] = config['addition_embed_type']
    if added:
        raise ValueError(f'U-Net conditioning {added} (projected encoder states, non-embedding class conditions or '
                         f'added embeddings other than SDXL\'s text_time) is not supported; mmdiff conditions on the '
                         f'timestep, an optional class label, a cross-attention context and SDXL\'s text_time')


def resolve_unet(arch: Union[str, dict, None], model_dir: Optional[str], for_build: bool = True) -> ModelSource:
    """The U-Net ``arch`` and ``model_dir`` name, from configuration files alone, checked against each other.

    Args:
        arch (str | dict | None): A name in :data:`UNET_PRESETS`, a dict of U-Net keyword arguments (optionally
            with ``type``, one of :data:`UNET_TYPES`), or None to take ``model_dir``'s U-Net as it is.
        model_dir (str, optional): A local diffusers model or pipeline folder. Defaults to None (random weights).
        for_build (bool): ``model_dir`` must exist; otherwise a missing one is described by ``arch``.
            Defaults to True.

    Returns:
        ModelSource: The U-Net class, its full config and the folder its weights load from.
    """
    source = resolve_model_source(arch, model_dir, for_build, UNET_PRESETS, UNET_TYPES, 'unet', 'U-Net')
    check_supported(source.class_name, source.config)
    return source


def build_unet_model(source: ModelSource) -> nn.Module:
    """The U-Net ``source`` describes: loaded from its folder with ``local_files_only=True``, else random."""
    return build_model_source(source, UNET_TYPES)


def build_unet(arch: Union[str, dict, None], model_dir: Optional[str] = None) -> nn.Module:
    """Build a diffusers U-Net from a preset or dict, or load it from a local folder (checked against ``arch``).

    Args:
        arch (str | dict | None): A name in :data:`UNET_PRESETS`, a dict of U-Net keyword arguments, or None to
            take ``model_dir``'s U-Net as it is.
        model_dir (str, optional): A local diffusers model or pipeline folder. Defaults to None (random weights).

    Returns:
        nn.Module: A ``UNet2DModel`` or ``UNet2DConditionModel``.
    """
    return build_unet_model(resolve_unet(arch, model_dir))
