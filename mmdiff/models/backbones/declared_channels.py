"""The outputs a DiffusionUNetBackbone config declares, from the U-Net's config and the taps alone: for tools and
tests that check a neck's or head's literal ``in_channels`` without building a module or reading a weight."""
import os
from typing import List, Optional, Tuple, Union

from diffusers import DDPMScheduler

from mmdiff.registry import MODELS
from mmdiff.utils.choices import check_choice
from mmdiff.utils.model_check import accepted_arguments, constructor_defaults
from .backbone_inputs import check_timesteps
from .diffusion_unet import DiffusionUNetBackbone
from .feature_info import FeatureLevel, declare_feature_info
from .latent_context import DEFAULT_NUM_TOKENS, load_context_tensor
from .unet_builder import (DEFAULT_SCHEDULER, SCHEDULERS, read_diffusers_config, resolve_preset, unet_folder,
                           vae_folder)
from .unet_configs import UNET_PRESETS
from .unet_taps import list_config_taps
from .vae_encoder import VAE_PRESETS, vae_latent_stride


def _unet_config(arch: Union[str, dict, None], model_dir: Optional[str]) -> Tuple[str, dict]:
    """The U-Net's class name and config: ``model_dir``'s ``config.json`` (diffusers' ``load_config``, no weights)
    when the folder exists or ``arch`` is None, else the preset or dict ``arch``."""
    if model_dir is not None and (os.path.isdir(model_dir) or arch is None):
        return read_diffusers_config(unet_folder(model_dir))
    config = resolve_preset('arch', arch, UNET_PRESETS, 'U-Net')
    if config is None:
        raise ValueError('arch=None needs model_dir, a local diffusers folder to take the U-Net from')
    config = dict(config)
    return config.pop('type', 'UNet2DModel'), config


def _latent_stride(vae: Union[str, dict, None], model_dir: Optional[str]) -> int:
    """Image pixels per U-Net input pixel: the VAE's latent stride (``model_dir``'s ``vae/``, else ``vae``), else 1."""
    folder = vae_folder(model_dir)
    config = read_diffusers_config(folder)[1] if folder is not None else resolve_preset(
        'vae', vae, VAE_PRESETS, 'AutoencoderKL')
    return 1 if config is None else vae_latent_stride(config)


def _context_tokens(context: Optional[dict], needed: bool) -> Optional[int]:
    """Tokens of a :class:`LatentContext` config: its ``num_tokens``, else its file's, else (no file) the default;
    None without a context, or when the file is not written yet and no channel depends on the count."""
    if context is None:
        return None
    if context.get('num_tokens') is not None:
        return context['num_tokens']
    path = context.get('path')
    if path is None:
        return DEFAULT_NUM_TOKENS
    if os.path.isfile(path):
        return load_context_tensor(path).shape[0]
    if needed:
        raise ValueError(f'the cross-attention maps add one channel per context token, but the context file '
                         f'{path!r} does not exist and the context gives no num_tokens')
    return None


def _num_train_timesteps(noise_scheduler: Optional[dict], model_dir: Optional[str]) -> int:
    """The training steps T of the noise schedule: ``noise_scheduler``'s, else ``model_dir``'s ``scheduler/``, else
    the default schedule's."""
    if noise_scheduler is None and model_dir is not None and os.path.isdir(os.path.join(model_dir, 'scheduler')):
        noise_scheduler = dict(DDPMScheduler.load_config(model_dir, subfolder='scheduler', local_files_only=True),
                               type='DDPMScheduler')
    config = dict(DEFAULT_SCHEDULER if noise_scheduler is None else noise_scheduler)
    scheduler_type = config.pop('type', None)
    check_choice('noise_scheduler type', scheduler_type, SCHEDULERS)
    return dict(constructor_defaults(SCHEDULERS[scheduler_type]), **config)['num_train_timesteps']


def declared_feature_info(backbone: dict) -> Tuple[FeatureLevel, ...]:
    """The :attr:`~DiffusionUNetBackbone.feature_info` a :class:`DiffusionUNetBackbone` config will have, from the
    U-Net's config and the taps alone (:func:`list_config_taps`, :func:`declare_feature_info`).

    Nothing is built and no weight is read. A ``model_dir`` that exists contributes its ``config.json`` files (the
    U-Net's, ``vae/``'s and ``scheduler/``'s); one that does not is described by ``arch``, ``vae`` and
    ``noise_scheduler``. A VAE multiplies every stride by its latent stride; cross-attention maps add one channel per
    context token (``num_tokens``, or the count the context file holds).

    Args:
        backbone (dict): The backbone config, ``dict(type='DiffusionUNetBackbone', ...)`` (or a subclass such as
            ``'DifFeedBackbone'``; no type means ``DiffusionUNetBackbone``).

    Returns:
        tuple[FeatureLevel, ...]: One record per output, in output order.
    """
    backbone_class = MODELS.get(backbone.get('type', 'DiffusionUNetBackbone'))
    if not (isinstance(backbone_class, type) and issubclass(backbone_class, DiffusionUNetBackbone)):
        raise ValueError(f'declared_feature_info reads configs of DiffusionUNetBackbone or a subclass, got '
                         f'type={backbone.get("type")!r}')
    unknown = sorted(set(backbone) - {'type'} - accepted_arguments(backbone_class))
    if unknown:
        raise TypeError(f'{backbone_class.__name__} takes no arguments {unknown}; it takes '
                        f'{sorted(accepted_arguments(backbone_class))}')
    args = dict(constructor_defaults(DiffusionUNetBackbone), **{k: v for k, v in backbone.items() if k != 'type'})
    unet_type, unet_config = _unet_config(args['arch'], args['model_dir'])
    context_tokens = _context_tokens(args['context'], needed=args['attention_maps'] is not None)
    taps = list_config_taps(unet_config, unet_type, _latent_stride(args['vae'], args['model_dir']), context_tokens)
    timesteps = check_timesteps(args['timesteps'], _num_train_timesteps(args['noise_scheduler'], args['model_dir']))
    return declare_feature_info(taps, timesteps, args['timestep_fusion'], args['out_strides'], args['out_blocks'],
                                args['resample_missing_strides'], args['attention_maps'], context_tokens,
                                args['projection_channels'])


def declared_out_channels(backbone: dict) -> List[int]:
    """The channels a :class:`DiffusionUNetBackbone` config will output, for a neck's ``in_channels``: those of
    :func:`declared_feature_info`.

    Args:
        backbone (dict): The backbone config (see :func:`declared_feature_info`).

    Returns:
        list[int]: Channels per output, in output order.
    """
    return [level.channels for level in declared_feature_info(backbone)]
