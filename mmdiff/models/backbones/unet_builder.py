"""Building the diffusers U-Net and noise scheduler that mmdiff's backbone and pretrainer share.

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
from torch import nn

from mmdiff.utils.choices import check_choice
from .unet_configs import UNET_PRESETS

UNET_TYPES = {'UNet2DModel': UNet2DModel, 'UNet2DConditionModel': UNet2DConditionModel}
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
    """A diffusers ``config.json``: the class name and the constructor arguments."""
    with open(os.path.join(folder, 'config.json')) as file:
        config = json.load(file)
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
    if scheduler_type not in SCHEDULERS:
        raise ValueError(f'noise_scheduler type {scheduler_type!r} is not supported; choose one of '
                         f'{list(SCHEDULERS)}')
    return SCHEDULERS[scheduler_type](**config)
