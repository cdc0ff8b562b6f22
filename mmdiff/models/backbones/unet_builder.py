"""Building the diffusers U-Net, noise scheduler, VAE encoder and context that mmdiff's backbone and pretrainer
share.

An ``arch`` is a preset name of :data:`UNET_PRESETS`, a dict of U-Net keyword arguments (with
``type='UNet2DConditionModel'`` for a text-conditioned U-Net) or None to take a local diffusers folder's U-Net.
A ``model_dir`` is a model folder (``config.json`` + weights) or a pipeline folder (``unet/``, ``scheduler/`` and,
for latent diffusion, ``vae/``); it is always read with ``local_files_only=True``.
"""
import json
import os
from typing import Optional, Tuple, Union

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DConditionModel, UNet2DModel
from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0
from torch import nn

from mmdiff.utils.choices import check_choice
from .latent_context import CONTEXT_TYPES, LatentContext
from .unet_configs import UNET_PRESETS
from .vae_encoder import VAE_LATENTS, VAE_PRESETS, VAEEncoder, full_vae_config

UNET_TYPES = {'UNet2DModel': UNet2DModel, 'UNet2DConditionModel': UNet2DConditionModel}
ATTENTION_PROCESSORS = {'sdpa': AttnProcessor2_0, 'math': AttnProcessor}
SCHEDULERS = {'DDPMScheduler': DDPMScheduler, 'DDIMScheduler': DDIMScheduler}
DEFAULT_SCHEDULER = dict(type='DDPMScheduler', num_train_timesteps=1000, beta_schedule='linear')


def resolve_preset(argument: str, value: Union[str, dict, None], presets: dict, described: str) -> Optional[dict]:
    """``value`` as keyword arguments: a preset name is looked up in ``presets``; a dict or None is returned as is.

    Args:
        argument (str): The argument's name, for the error messages.
        value (str | dict | None): A preset name, a dict of keyword arguments or None.
        presets (dict): Preset name -> keyword arguments.
        described (str): What the dict's keys are the arguments of, e.g. ``'U-Net'``.
    """
    if isinstance(value, str):
        check_choice(argument, value, presets)
        return presets[value]
    if isinstance(value, dict) or value is None:
        return value
    raise TypeError(f'{argument} must be a preset name {list(presets)}, a dict of {described} arguments or None, '
                    f'got {type(value).__name__}')


def read_diffusers_config(folder: str) -> Tuple[str, dict]:
    """A diffusers model folder's configuration, read by diffusers' ``load_config(local_files_only=True)``: the
    class name and the constructor arguments."""
    config = UNet2DModel.load_config(folder, local_files_only=True)
    return config.get('_class_name'), {key: value for key, value in config.items() if not key.startswith('_')}


def unet_folder(model_dir: str) -> str:
    """The folder holding the U-Net of ``model_dir``: a model folder, or a pipeline folder's ``unet/``."""
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f'model_dir {model_dir!r} does not exist; give a local diffusers folder holding '
                                f'config.json and the weights, or a pipeline folder with unet/ and scheduler/ '
                                f'(and vae/ for a latent-diffusion model)')
    if os.path.isfile(os.path.join(model_dir, 'unet', 'config.json')):
        return os.path.join(model_dir, 'unet')
    if os.path.isfile(os.path.join(model_dir, 'config.json')):
        return model_dir
    raise ValueError(f'model_dir {model_dir!r} is not a diffusers folder: it has neither config.json nor '
                     f'unet/config.json (it holds {sorted(os.listdir(model_dir))})')


def vae_folder(model_dir: Optional[str]) -> Optional[str]:
    """``model_dir``'s ``vae/`` when it is a pipeline folder with one."""
    if model_dir is None or not os.path.isfile(os.path.join(model_dir, 'vae', 'config.json')):
        return None
    return os.path.join(model_dir, 'vae')


def check_folder_matches(argument: str, given: Union[str, dict], wanted: dict, folder_config: dict,
                         folder: str) -> None:
    """Fail when the preset or dict ``argument=given`` differs from the configuration in ``folder``."""
    differing = {key: (value, folder_config.get(key)) for key, value in wanted.items()
                 if not key.startswith('_') and json.dumps(folder_config.get(key)) != json.dumps(value)}
    if differing:
        given_text = repr(given) if isinstance(given, str) else 'the given dict'
        raise ValueError(f'the model in {folder!r} does not match {argument}={given_text}: (given, folder) '
                         f'differ in {differing}; set {argument}=None to use the folder\'s configuration')


def _check_supported(unet: nn.Module) -> None:
    """Refuse U-Net variants whose inputs or blocks mmdiff does not drive."""
    unsupported = [type(block).__name__ for block in (*unet.down_blocks, *unet.up_blocks)
                   if hasattr(block, 'skip_conv')]
    if unsupported:
        raise ValueError(f'U-Net blocks {unsupported} (score-SDE skip blocks) are not supported; use U-Nets '
                         f'built from the standard diffusers down/up blocks')
    if unet.config.center_input_sample:
        raise ValueError('the U-Net has center_input_sample=True (it expects [0, 1] inputs); mmdiff feeds it '
                         'images in [-1, 1], so use a U-Net configured with center_input_sample=False')
    added = {key: unet.config.get(key) for key in ('addition_embed_type', 'encoder_hid_dim_type',
                                                      'class_embed_type', 'class_embeddings_concat')
             if unet.config.get(key)}
    if added:
        raise ValueError(f'U-Net conditioning {added} (SDXL-style added embeddings, projected encoder states '
                         f'or non-embedding class conditions) is not supported; mmdiff conditions on the '
                         f'timestep, an optional class label and a cross-attention context')


def build_unet(arch: Union[str, dict, None], model_dir: Optional[str] = None) -> nn.Module:
    """Build a diffusers U-Net from a preset or dict, or load it from a local folder (checked against ``arch``).

    Args:
        arch (str | dict | None): A name in :data:`UNET_PRESETS`, a dict of U-Net keyword arguments (optionally
            with ``type``, one of :data:`UNET_TYPES`), or None to take ``model_dir``'s U-Net as it is.
        model_dir (str, optional): A local diffusers model or pipeline folder. Defaults to None (random weights).

    Returns:
        nn.Module: A ``UNet2DModel`` or ``UNet2DConditionModel``.
    """
    given, arch = arch, resolve_preset('arch', arch, UNET_PRESETS, 'U-Net')
    config = None
    if arch is not None:
        config = dict(arch)
        unet_type = config.pop('type', 'UNet2DModel')
        check_choice('arch type', unet_type, UNET_TYPES)
    if model_dir is None:
        if config is None:
            raise ValueError('arch=None needs model_dir, a local diffusers folder to take the U-Net from')
        unet = UNET_TYPES[unet_type](**config)
    else:
        folder = unet_folder(model_dir)
        folder_type = read_diffusers_config(folder)[0]
        check_choice(f'the U-Net class in {folder!r}', folder_type, UNET_TYPES)
        unet = UNET_TYPES[folder_type].from_pretrained(folder, local_files_only=True, low_cpu_mem_usage=False)
        if config is not None and unet_type != folder_type:
            raise ValueError(f'the U-Net in {folder!r} is a {folder_type}, but arch describes a {unet_type}; '
                             f'set arch=None to use the folder\'s U-Net')
        if config is not None:
            with torch.device('meta'):  # the full config, defaults included, without allocating weights
                full_config = dict(UNET_TYPES[unet_type](**config).config)
            check_folder_matches('arch', given, full_config, dict(unet.config), folder)
    _check_supported(unet)
    return unet


def build_noise_scheduler(config: Optional[dict], model_dir: Optional[str] = None) -> DDPMScheduler:
    """The training noise schedule: ``config`` as ``dict(type=..., **kwargs)``, else ``model_dir``'s
    ``scheduler/``, else :data:`DEFAULT_SCHEDULER` (linear DDPM, T = 1000)."""
    if config is None:
        if model_dir is not None and os.path.isdir(os.path.join(model_dir, 'scheduler')):
            return DDPMScheduler.from_pretrained(model_dir, subfolder='scheduler', local_files_only=True)
        config = DEFAULT_SCHEDULER
    config = dict(config)
    scheduler_type = config.pop('type', None)
    check_choice('noise_scheduler type', scheduler_type, SCHEDULERS)
    return SCHEDULERS[scheduler_type](**config)


def build_vae_encoder(unet: nn.Module, vae: Union[str, dict, None], latents: str,
                      model_dir: Optional[str]) -> Optional[VAEEncoder]:
    """The VAE encoder of a latent-diffusion U-Net: ``model_dir``'s ``vae/`` (checked against ``vae``), else the
    preset or dict ``vae``, else None (the U-Net runs on pixels).

    Args:
        unet (nn.Module): The U-Net the latents are for.
        vae (str | dict, optional): A :data:`VAE_PRESETS` name or ``AutoencoderKL`` keyword arguments.
        latents (str): ``'scaled'`` or ``'unscaled'`` (:data:`VAE_LATENTS`).
        model_dir (str, optional): A local diffusers pipeline folder.
    """
    given, vae = vae, resolve_preset('vae', vae, VAE_PRESETS, 'AutoencoderKL')
    folder = vae_folder(model_dir)
    if folder is not None:
        encoder = VAEEncoder.from_folder(folder, latents)
        if vae is not None:
            check_folder_matches('vae', given, full_vae_config(vae), encoder.config, folder)
    elif vae is not None:
        encoder = VAEEncoder(vae, latents)
    elif isinstance(unet, UNet2DConditionModel) and model_dir is not None:
        raise FileNotFoundError(f'{model_dir!r} holds a latent-diffusion U-Net ({type(unet).__name__}) but no vae/ '
                                f'folder with the AutoencoderKL that makes its latents; add vae/ (only its encoder '
                                f'is kept) or give vae=')
    else:
        check_choice('vae_latents', latents, VAE_LATENTS)
        if latents != 'scaled':
            raise ValueError(f'vae_latents={latents!r} chooses how VAE latents are scaled, but this U-Net runs on '
                             f'pixels (no vae)')
        return None
    if encoder.latent_channels != unet.config.in_channels:
        raise ValueError(f'the VAE makes {encoder.latent_channels}-channel latents, but the U-Net takes '
                         f'{unet.config.in_channels} input channels')
    return encoder


def build_context(unet: nn.Module, context: Optional[dict]) -> Optional[LatentContext]:
    """What a ``UNet2DConditionModel`` cross-attends to (:class:`LatentContext` arguments); None for other U-Nets."""
    dim = unet.config.get('cross_attention_dim') if isinstance(unet, UNet2DConditionModel) else None
    if dim is None:
        if context is not None:
            raise ValueError(f'context={context!r} was given, but the U-Net ({type(unet).__name__}) has no '
                             f'cross-attention')
        return None
    if not isinstance(context, dict):
        raise ValueError(f'the U-Net cross-attends to a {dim}-dimensional context: give context=dict(type=...) '
                         f'with type one of {list(CONTEXT_TYPES)}, got {context!r}')
    return LatentContext(dim=dim, **context)


def set_attention_processor(unet: nn.Module, attention: str) -> None:
    """Give every attention of ``unet`` the processor ``attention`` names: ``'sdpa'`` (PyTorch's fused
    ``scaled_dot_product_attention``) or ``'math'`` (diffusers' explicit softmax(QK^T)V)."""
    check_choice('attention', attention, ATTENTION_PROCESSORS)
    for module in unet.modules():
        if isinstance(module, Attention):
            module.set_processor(ATTENTION_PROCESSORS[attention]())
