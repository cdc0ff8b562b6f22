"""The diffusers diffusion transformers mmdiff drives: resolved from a preset, a dict or a local folder, and built.

A ``model_dir`` is a model folder (``config.json`` + weights) or a pipeline folder (``transformer/``, ``scheduler/``
and ``vae/``); it is always read with ``local_files_only=True``.
"""
from typing import Mapping, Optional, Union

from diffusers import (DiTTransformer2DModel, FluxTransformer2DModel, PixArtTransformer2DModel, SanaTransformer2DModel,
                       SD3Transformer2DModel)
from torch import nn

from ..core.family import ModelSource
from ..core.sources import build_model_source, resolve_model_source
from .presets import TRANSFORMER_PRESETS

TRANSFORMER_TYPES = {'DiTTransformer2DModel': DiTTransformer2DModel, 'PixArtTransformer2DModel': PixArtTransformer2DModel,
                     'SD3Transformer2DModel': SD3Transformer2DModel, 'FluxTransformer2DModel': FluxTransformer2DModel,
                     'SanaTransformer2DModel': SanaTransformer2DModel}
# the families trained with flow matching (the others with DDPM betas)
FLOW_MATCHING_TYPES = ('SD3Transformer2DModel', 'FluxTransformer2DModel', 'SanaTransformer2DModel')
# DiT and PixArt folders saved before their classes existed name the generic class; diffusers picks by norm_type
LEGACY_CLASSES = {'ada_norm_zero': 'DiTTransformer2DModel', 'ada_norm_single': 'PixArtTransformer2DModel'}


def folder_class(class_name: str, config: Mapping) -> str:
    """The class a folder's model loads as, with diffusers' remapping of the legacy ``Transformer2DModel``."""
    return LEGACY_CLASSES.get(config.get('norm_type'), class_name) if class_name == 'Transformer2DModel' else class_name


def resolve_transformer(arch: Union[str, dict, None], model_dir: Optional[str], for_build: bool = True) -> ModelSource:
    """The transformer ``arch`` and ``model_dir`` name, from configuration files alone, checked against each other.

    Args:
        arch (str | dict | None): A name in :data:`TRANSFORMER_PRESETS`, a dict of keyword arguments with ``type``
            (one of :data:`TRANSFORMER_TYPES`), or None to take ``model_dir``'s transformer as it is.
        model_dir (str, optional): A local diffusers model or pipeline folder. Defaults to None (random weights).
        for_build (bool): ``model_dir`` must exist. Defaults to True.
    """
    return resolve_model_source(arch, model_dir, for_build, TRANSFORMER_PRESETS, TRANSFORMER_TYPES, 'transformer',
                                'transformer', folder_class, default_class=False)


def build_transformer_model(source: ModelSource) -> nn.Module:
    """The transformer ``source`` describes: loaded from its folder with ``local_files_only=True``, else random."""
    return build_model_source(source, TRANSFORMER_TYPES)
