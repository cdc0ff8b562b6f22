"""The tappable outputs of a diffusers U-Net, and the three ways of choosing them.

A *tap* is the output of one named submodule of the U-Net. :func:`list_config_taps` enumerates them from the U-Net's
config alone (``block_out_channels``, ``layers_per_block``, the down, mid and up block types, ...; no module, no
weights) in forward order, each with its channels and stride; :func:`list_unet_taps` does the same for a built
U-Net, from its ``config``:

- ``conv_in``;
- per encoder level ``j``: ``down_blocks.j.resnets.k``, ``down_blocks.j.attentions.k``,
  ``down_blocks.j.downsamplers.0`` and the block output ``down_blocks.j``;
- ``mid_block.resnets.k.conv2`` and ``mid_block``;
- per decoder level ``j``: ``up_blocks.j.resnets.k``, ``up_blocks.j.attentions.k``, ``up_blocks.j.upsamplers.0``
  and the block output ``up_blocks.j``;
- before each resnet layer's output, ``....resnets.k.conv2``: its residual branch (the last convolution, before
  the shortcut is added), where RepFusion hooks its teachers (``mid_block.resnets.1.conv2``);
- for a text-conditioned U-Net, before each transformer's output, ``....attentions.k.transformer_blocks.b.attn2.map``:
  its cross-attention map, one channel per context token (VPD's extra channels).

Taps are chosen by name, by guided-diffusion block number (the diffssl numbering) or by stride
(:func:`~mmdiff.models.backbones.core.taps.resolve_taps`, whose errors name the valid choices);
:func:`mirror_encoder_tap` pairs a decoder layer with the encoder output its skip connection carries (DifFeed).

The diffssl numbering counts guided-diffusion's ``input_blocks`` (1 .. E), ``middle_block`` (E + 1) and
``output_blocks`` (E + 2 .. 2E + 1). diffusers' ADM-layout U-Nets reproduce those blocks one to one: input block
1 is ``conv_in``, then each encoder layer (resnet, plus attention where the level has it) and each downsampler;
each decoder layer is one output block, the last of a level including its upsampler (``upsamplers.0``). For the
ADM ImageNet-256 layout E = 18: block 19 is the middle, block 24 ``up_blocks.1.attentions.1`` (stride 16).
"""
import dataclasses
from typing import List, Mapping, Optional, Sequence, Tuple

from torch import nn

from mmdiff.diffusers_compat import DOWN_BLOCKS, MID_BLOCK_RESNETS, UP_BLOCKS, cross_attention_map_name
from mmdiff.utils.choices import check_choice
from mmdiff.utils.model_check import constructor_defaults
from ..core.taps import Tap
from .builder import UNET_TYPES

def _per_level(value, num_levels: int) -> list:
    """A per-level U-Net setting (``layers_per_block``, ``transformer_layers_per_block``) as one entry per level."""
    return list(value) if isinstance(value, (list, tuple)) else [value] * num_levels


def _per_layer(value, layer: int) -> int:
    """Layer ``layer``'s entry of a level's ``transformer_layers_per_block`` (an int for all layers, or a list)."""
    return value[layer] if isinstance(value, (list, tuple)) else value


def _map_taps(name: str, num_transformer_blocks: int, context_tokens: Optional[int], stride: int, stage: str,
              depth: int) -> List[Tap]:
    """The cross-attention map taps of the transformer ``name`` (none without a context)."""
    if context_tokens is None:
        return []
    return [Tap(cross_attention_map_name(name, b), context_tokens, stride, stage, 'attention_map', depth)
            for b in range(num_transformer_blocks)]


def _layer_taps(prefix: str, channels: int, num_layers: int, attention: Optional[str], transformer_layers,
                stride: int, stage: str, depth: int, first_index: int,
                context_tokens: Optional[int]) -> List[Tap]:
    """Taps of each (resnet, attention) layer of a down or up block; the layer output gets a diffssl number."""
    taps = []
    for k in range(num_layers):
        taps.append(Tap(f'{prefix}.resnets.{k}.conv2', channels, stride, stage, 'residual', depth))
        taps.append(Tap(f'{prefix}.resnets.{k}', channels, stride, stage, 'layer', depth,
                            None if attention is not None else first_index + k))
        if attention is not None:
            if attention == 'transformer':
                taps += _map_taps(f'{prefix}.attentions.{k}', _per_layer(transformer_layers, k), context_tokens,
                                  stride, stage, depth)
            taps.append(Tap(f'{prefix}.attentions.{k}', channels, stride, stage, 'layer', depth,
                                first_index + k))
    return taps


def _mid_block_layout(config: Mapping, unet_type: str, transformer_layers) -> Optional[Tuple[int, int]]:
    """The middle block as (resnets, transformer blocks of its cross-attention, 0 for none); None without one."""
    mid_type = config['mid_block_type']
    if mid_type is None:
        return None
    if unet_type == 'UNet2DModel':  # builds a UNetMidBlock2D for any mid_block_type but None
        return 2, 0
    check_choice('mid_block_type', mid_type, MID_BLOCK_RESNETS)
    blocks = _per_layer(transformer_layers, 0) if mid_type == 'UNetMidBlock2DCrossAttn' else 0
    return MID_BLOCK_RESNETS[mid_type], blocks


def list_config_taps(config: Mapping, unet_type: str = 'UNet2DModel', input_stride: int = 1,
                     context_tokens: Optional[int] = None) -> List[Tap]:
    """Enumerate the tappable outputs of a diffusers U-Net from its config, in forward order, building nothing.

    Args:
        config (Mapping): ``UNet2DModel`` / ``UNet2DConditionModel`` keyword arguments (a preset of
            :data:`UNET_PRESETS` without its ``type``, a ``config.json``, a built U-Net's ``config``); the
            constructor's defaults fill in what it leaves out.
        unet_type (str): ``'UNet2DModel'`` or ``'UNet2DConditionModel'``. Defaults to ``'UNet2DModel'``.
        input_stride (int): Stride of the U-Net's input relative to the image, e.g. 8 for a latent U-Net behind
            a VAE. Defaults to 1.
        context_tokens (int, optional): Tokens a text-conditioned U-Net cross-attends to: the channels of its
            cross-attention map taps. Defaults to None (no map taps).

    Returns:
        list[Tap]: One record per tap, in the order the forward pass produces them.
    """
    check_choice('unet_type', unet_type, UNET_TYPES)
    config = dict(constructor_defaults(UNET_TYPES[unet_type]), **config)
    widths = list(config['block_out_channels'])
    num_levels = len(widths)
    down_types, up_types = list(config['down_block_types']), list(config['up_block_types'])
    if len(down_types) != num_levels or len(up_types) != num_levels:
        raise ValueError(f'the U-Net has {num_levels} block_out_channels {tuple(widths)} but '
                         f'{len(down_types)} down_block_types and {len(up_types)} up_block_types; give one per level')
    if config.get('dual_cross_attention'):
        raise ValueError('dual_cross_attention=True (DualTransformer2DModel) is not supported; use a U-Net with '
                         'one Transformer2DModel per attention layer')
    if config.get('cross_attention_dim') is None:
        context_tokens = None  # no cross-attention, no maps
    layers = _per_level(config['layers_per_block'], num_levels)
    transformer_layers = _per_level(config.get('transformer_layers_per_block', 1), num_levels)
    up_transformer_layers = config.get('reverse_transformer_layers_per_block') or transformer_layers[::-1]
    stride = input_stride
    depth = 0
    taps = [Tap('conv_in', widths[0], stride, 'encoder', 'stem', depth, 1)]
    index = 2
    for j, block_type in enumerate(down_types):
        check_choice(f'down_block_types[{j}]', block_type, DOWN_BLOCKS)
        depth += 1
        taps += _layer_taps(f'down_blocks.{j}', widths[j], layers[j], DOWN_BLOCKS[block_type], transformer_layers[j],
                            stride, 'encoder', depth, index, context_tokens)
        index += layers[j]
        if j < num_levels - 1:
            stride *= 2
            taps.append(Tap(f'down_blocks.{j}.downsamplers.0', widths[j], stride, 'encoder', 'resample', depth,
                                index))
            index += 1
        taps.append(Tap(f'down_blocks.{j}', widths[j], stride, 'encoder', 'block', depth))
    mid_block = _mid_block_layout(config, unet_type, transformer_layers[-1])
    if mid_block is not None:
        depth += 1
        num_resnets, transformer_blocks = mid_block
        for k in range(num_resnets):  # resnets.0, then (attention, resnet) pairs
            if k > 0 and transformer_blocks:
                taps += _map_taps(f'mid_block.attentions.{k - 1}', transformer_blocks, context_tokens, stride,
                                  'middle', depth)
            taps.append(Tap(f'mid_block.resnets.{k}.conv2', widths[-1], stride, 'middle', 'residual', depth))
        taps.append(Tap('mid_block', widths[-1], stride, 'middle', 'middle', depth, index))
        index += 1
    for j, block_type in enumerate(up_types):
        check_choice(f'up_block_types[{j}]', block_type, UP_BLOCKS)
        depth += 1
        level = num_levels - 1 - j
        num_layers = layers[level] + 1
        level_taps = _layer_taps(f'up_blocks.{j}', widths[level], num_layers, UP_BLOCKS[block_type],
                                 up_transformer_layers[j], stride, 'decoder', depth, index, context_tokens)
        index += num_layers
        if j < num_levels - 1:
            # guided-diffusion counts the upsampler into the level's last output block
            level_taps[-1] = dataclasses.replace(level_taps[-1], diffssl_index=None)
            stride //= 2
            level_taps.append(Tap(f'up_blocks.{j}.upsamplers.0', widths[level], stride, 'decoder', 'resample',
                                      depth, index - 1))
        taps += level_taps
        taps.append(Tap(f'up_blocks.{j}', widths[level], stride, 'decoder', 'block', depth))
    return taps


def list_unet_taps(unet: nn.Module, input_stride: int = 1, context_tokens: Optional[int] = None) -> List[Tap]:
    """Enumerate the tappable outputs of a built diffusers U-Net in forward order: :func:`list_config_taps` of its
    ``config``.

    Args:
        unet (nn.Module): A ``UNet2DModel`` or ``UNet2DConditionModel``.
        input_stride (int): Stride of the U-Net's input relative to the image. Defaults to 1.
        context_tokens (int, optional): Channels of its cross-attention map taps. Defaults to None (none).

    Returns:
        list[Tap]: One record per tap, in the order the forward pass produces them.
    """
    return list_config_taps(unet.config, type(unet).__name__, input_stride, context_tokens)


def mirror_encoder_tap(taps: Sequence[Tap], decoder_tap: Tap) -> Tap:
    """The encoder output whose skip connection the decoder layer ``decoder_tap`` concatenates: its mirror.

    The encoder pushes a skip after ``conv_in``, after each layer and after each downsampler (the taps with a
    diffssl number); the decoder's layers pop them in reverse order, so the g-th decoder layer mirrors the g-th
    skip from the end, at the same stride.

    Args:
        taps (Sequence[Tap]): The U-Net's taps, from :func:`list_unet_taps`.
        decoder_tap (Tap): A decoder layer (a resnet or attention output).
    """
    if decoder_tap.stage != 'decoder' or decoder_tap.kind != 'layer':
        raise ValueError(f'{decoder_tap.name!r} ({decoder_tap.stage} {decoder_tap.kind}) has no mirror encoder '
                         f'block: only decoder layers (resnets and attentions) pop a skip connection; name the '
                         f'layer before an upsampler, or give an explicit (decoder, encoder) pair')
    skips = [tap for tap in taps if tap.stage == 'encoder' and tap.diffssl_index is not None]
    layers = list(dict.fromkeys(
        tap.name.rsplit('.', 2)[0] + '.' + tap.name.rsplit('.', 1)[1] for tap in taps
        if tap.stage == 'decoder' and tap.kind == 'layer'))  # 'up_blocks.j.k', one per layer, in forward order
    layer = decoder_tap.name.rsplit('.', 2)[0] + '.' + decoder_tap.name.rsplit('.', 1)[1]
    return skips[len(skips) - 1 - layers.index(layer)]
