"""Every use mmdiff makes of diffusers internals, in one package, with the diffusers versions it is tested on.

diffusers' public surface (model classes, ``from_pretrained``, ``load_config``, schedulers, ``forward``) is used
everywhere; this package alone reaches below it: the submodules of a ``ResnetBlock2D`` and an ``Attention`` called
one by one (to return a resnet's residual branch and a cross-attention's probabilities, which diffusers' forward
never returns), the U-Net's embedding layers (to run its pass up to a tap), the block classes of its layout
(:mod:`.unet`), a diffusion transformer's embeddings, blocks and AdaLN norms (:mod:`.transformers`), and the
autoencoder encoders diffusers does not export at the top level (:mod:`.vae`). These change between diffusers
releases, so :func:`check_diffusers_version` refuses a version outside :data:`TESTED_DIFFUSERS`, naming both, and
``pyproject.toml`` declares the same range. :data:`INTERNAL_ATTRIBUTES` lists the attributes read here; a test
checks that no module outside this package touches them.
"""
from .transformers import (TRANSFORMER_INTERNALS, TokenState, flux_image_ids, flux_packed, modulation_parameters,
                           text_output_modules, token_stride, tokens_to_map, transformer_blocks,
                           transformer_embedding_modules)
from .unet import (ATTENTION_PROCESSORS, DOWN_BLOCKS, MID_BLOCK_RESNETS, NUM_TIME_IDS, UNET_INTERNALS, UP_BLOCKS,
                   Attention, ResnetBlock2D, check_map_support, cross_attention_map_name, cross_attention_map_names,
                   embedding_modules, is_plain_attention, randn_tensor, resnet_from_residual, resnet_residual,
                   resnet_residual_modules, sdxl_conditions, set_attention_processor, time_embedding,
                   transformer_with_maps)
from .vae import DCEncoderLayers, VAEEncoderLayers
from .version import TESTED_DIFFUSERS, check_diffusers_version

# every diffusers attribute below the public surface that this package reads
INTERNAL_ATTRIBUTES = UNET_INTERNALS | TRANSFORMER_INTERNALS

__all__ = [
    'TESTED_DIFFUSERS', 'INTERNAL_ATTRIBUTES', 'DOWN_BLOCKS', 'UP_BLOCKS', 'MID_BLOCK_RESNETS',
    'ATTENTION_PROCESSORS', 'NUM_TIME_IDS', 'Attention', 'ResnetBlock2D', 'VAEEncoderLayers', 'DCEncoderLayers',
    'randn_tensor', 'check_diffusers_version', 'set_attention_processor', 'is_plain_attention', 'sdxl_conditions',
    'cross_attention_map_name', 'resnet_residual', 'resnet_from_residual', 'resnet_residual_modules',
    'time_embedding', 'embedding_modules', 'cross_attention_map_names', 'check_map_support', 'transformer_with_maps',
    'tokens_to_map', 'flux_packed', 'flux_image_ids', 'transformer_blocks', 'TokenState', 'modulation_parameters',
    'transformer_embedding_modules', 'text_output_modules', 'token_stride'
]
