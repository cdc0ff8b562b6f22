"""The output channels a DiffusionUNetBackbone config declares, without weights: for tools and tests that check a
neck's or head's literal ``in_channels``."""
import os
from typing import List

import torch

from mmdiff.registry import MODELS
from .diffusion_unet import DiffusionUNetBackbone
from .unet_builder import read_diffusers_config, unet_folder, vae_folder


def declared_out_channels(backbone: dict) -> List[int]:
    """The channels a :class:`DiffusionUNetBackbone` config will output, for a neck's ``in_channels``.

    The backbone is built on the ``meta`` device, so no weights are allocated or loaded; a ``model_dir`` that
    exists contributes its ``config.json`` files, one that does not is described by ``arch`` and ``vae``.

    Args:
        backbone (dict): The backbone config, ``dict(type='DiffusionUNetBackbone', ...)`` (or a subclass such as
            ``'DifFeedBackbone'``; no type means ``DiffusionUNetBackbone``).

    Returns:
        list[int]: Channels per output, in output order.
    """
    kwargs = {key: value for key, value in backbone.items() if key not in ('type', 'init_cfg', 'model_dir')}
    model_dir = backbone.get('model_dir')
    if model_dir is not None and os.path.isdir(model_dir):  # read the folder's configs, not its weights
        unet_type, unet_config = read_diffusers_config(unet_folder(model_dir))
        kwargs['arch'] = dict(unet_config, type=unet_type)
        if kwargs.get('vae') is None and vae_folder(model_dir) is not None:
            kwargs['vae'] = read_diffusers_config(vae_folder(model_dir))[1]
    elif kwargs.get('arch') is None:
        unet_folder(model_dir)  # raises: nothing describes the U-Net
    context = kwargs.get('context')
    if context is not None and not (context.get('path') and os.path.isfile(context['path'])):  # not written yet
        if kwargs.get('attention_maps') is not None and context.get('num_tokens') is None:
            raise ValueError(f'the cross-attention maps add one channel per context token, but the context file '
                             f'{context.get("path")!r} does not exist and the context gives no num_tokens')
        kwargs['context'] = dict(type='zero', num_tokens=context.get('num_tokens'))
    backbone_class = MODELS.get(backbone.get('type', 'DiffusionUNetBackbone'))
    if not (isinstance(backbone_class, type) and issubclass(backbone_class, DiffusionUNetBackbone)):
        raise ValueError(f'declared_out_channels reads configs of DiffusionUNetBackbone or a subclass, got '
                         f'type={backbone.get("type")!r}')
    with torch.device('meta'):
        return list(backbone_class(**kwargs).out_channels)
