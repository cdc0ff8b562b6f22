"""The tappable outputs of a diffusers U-Net, and the three ways of choosing them.

A *tap* is the output of one named submodule of the U-Net. :func:`list_unet_taps` enumerates them from the module
tree alone (no forward pass, no weights needed) in forward order, each with its channels and stride:

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

Taps are chosen by name, by guided-diffusion block number (the diffssl numbering) or by stride:
:func:`resolve_taps` turns any of them into tap records, and its errors name the valid choices.

The diffssl numbering counts guided-diffusion's ``input_blocks`` (1 .. E), ``middle_block`` (E + 1) and
``output_blocks`` (E + 2 .. 2E + 1). diffusers' ADM-layout U-Nets reproduce those blocks one to one: input block
1 is ``conv_in``, then each encoder layer (resnet, plus attention where the level has it) and each downsampler;
each decoder layer is one output block, the last of a level including its upsampler (``upsamplers.0``). For the
ADM ImageNet-256 layout E = 18: block 19 is the middle, block 24 ``up_blocks.1.attentions.1`` (stride 16).
"""
import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

from diffusers.models.attention_processor import Attention
from torch import nn

from .cross_attention_maps import cross_attention_map_names


@dataclass(frozen=True)
class UNetTap:
    """One tappable submodule output of a U-Net.

    Args:
        name (str): Submodule path inside the U-Net, e.g. ``'up_blocks.1.attentions.1'``.
        channels (int): Channels of the output.
        stride (int): Input pixels per output pixel (the reduction).
        stage (str): ``'encoder'``, ``'middle'`` or ``'decoder'``.
        kind (str): ``'stem'`` (``conv_in``), ``'layer'`` (a resnet or attention), ``'residual'`` (a resnet's
            ``conv2``, before its shortcut is added), ``'attention_map'`` (a cross-attention's probabilities
            averaged over heads), ``'resample'`` (a down- or upsampler), ``'middle'`` or ``'block'`` (a whole down
            or up block).
        depth (int): How many top-level U-Net blocks must run to produce it: 0 for ``conv_in``, ``j + 1`` for
            ``down_blocks.j``, then the middle block, then ``up_blocks.j``.
        diffssl_index (int, optional): The guided-diffusion block number of this output, if it is one.
    """
    name: str
    channels: int
    stride: int
    stage: str
    kind: str
    depth: int
    diffssl_index: Optional[int] = None


def _map_taps(attention: nn.Module, name: str, context_tokens: Optional[int], stride: int, stage: str,
              depth: int) -> List[UNetTap]:
    """The cross-attention map taps of a transformer (none for a plain attention or without a context)."""
    if context_tokens is None or isinstance(attention, Attention):
        return []
    return [UNetTap(map_name, context_tokens, stride, stage, 'attention_map', depth)
            for map_name in cross_attention_map_names(attention, name)]


def _layer_taps(block: nn.Module, prefix: str, stride: int, stage: str, depth: int, first_index: int,
                context_tokens: Optional[int]) -> List[UNetTap]:
    """Taps of each (resnet, attention) layer of a down or up block; the layer output gets a diffssl number."""
    taps = []
    attentions = getattr(block, 'attentions', None)
    for k, resnet in enumerate(block.resnets):
        channels = resnet.out_channels
        attention = attentions[k] if attentions is not None and k < len(attentions) else None
        taps.append(UNetTap(f'{prefix}.resnets.{k}.conv2', channels, stride, stage, 'residual', depth))
        taps.append(UNetTap(f'{prefix}.resnets.{k}', channels, stride, stage, 'layer', depth,
                            None if attention is not None else first_index + k))
        if attention is not None:
            taps += _map_taps(attention, f'{prefix}.attentions.{k}', context_tokens, stride, stage, depth)
            taps.append(UNetTap(f'{prefix}.attentions.{k}', channels, stride, stage, 'layer', depth,
                                first_index + k))
    return taps


def list_unet_taps(unet: nn.Module, input_stride: int = 1, context_tokens: Optional[int] = None) -> List[UNetTap]:
    """Enumerate the tappable outputs of a diffusers ``UNet2DModel``-style U-Net in forward order.

    Args:
        unet (nn.Module): A U-Net with ``conv_in``, ``down_blocks``, ``mid_block`` and ``up_blocks``.
        input_stride (int): Stride of the U-Net's input relative to the image, e.g. 8 for a latent U-Net behind
            a VAE. Defaults to 1.
        context_tokens (int, optional): Tokens a text-conditioned U-Net cross-attends to: the channels of its
            cross-attention map taps. Defaults to None (no map taps).

    Returns:
        list[UNetTap]: One record per tap, in the order the forward pass produces them.
    """
    stride = input_stride
    depth = 0
    taps = [UNetTap('conv_in', unet.conv_in.out_channels, stride, 'encoder', 'stem', depth, 1)]
    index = 2
    for j, block in enumerate(unet.down_blocks):
        depth += 1
        layers = _layer_taps(block, f'down_blocks.{j}', stride, 'encoder', depth, index, context_tokens)
        taps += layers
        index += len(block.resnets)
        if block.downsamplers is not None:
            stride *= 2
            taps.append(UNetTap(f'down_blocks.{j}.downsamplers.0', block.downsamplers[0].out_channels, stride,
                                'encoder', 'resample', depth, index))
            index += 1
        taps.append(UNetTap(f'down_blocks.{j}', taps[-1].channels, stride, 'encoder', 'block', depth))
    if unet.mid_block is not None:
        depth += 1
        attentions = list(getattr(unet.mid_block, 'attentions', None) or ())
        for k, resnet in enumerate(unet.mid_block.resnets):  # resnets.0, then (attention, resnet) pairs
            if k > 0 and attentions[k - 1] is not None:
                taps += _map_taps(attentions[k - 1], f'mid_block.attentions.{k - 1}', context_tokens, stride,
                                  'middle', depth)
            taps.append(UNetTap(f'mid_block.resnets.{k}.conv2', resnet.out_channels, stride, 'middle', 'residual',
                                depth))
        taps.append(UNetTap('mid_block', unet.mid_block.resnets[-1].out_channels, stride, 'middle', 'middle', depth,
                            index))
        index += 1
    for j, block in enumerate(unet.up_blocks):
        depth += 1
        layers = _layer_taps(block, f'up_blocks.{j}', stride, 'decoder', depth, index, context_tokens)
        index += len(block.resnets)
        if block.upsamplers is not None:
            # guided-diffusion counts the upsampler into the level's last output block
            last = layers[-1]
            layers[-1] = dataclasses.replace(last, diffssl_index=None)
            stride //= 2
            layers.append(UNetTap(f'up_blocks.{j}.upsamplers.0', block.upsamplers[0].out_channels, stride,
                                  'decoder', 'resample', depth, index - 1))
        taps += layers
        taps.append(UNetTap(f'up_blocks.{j}', taps[-1].channels, stride, 'decoder', 'block', depth))
    return taps


def format_taps(taps: Sequence[UNetTap]) -> str:
    """A table of taps (name, diffssl block, stage, channels, stride), one line each."""
    width = max([34] + [len(tap.name) for tap in taps])
    lines = [f'{"tap":<{width}} {"block":>5} {"stage":<8} {"channels":>8} {"stride":>6}']
    for tap in taps:
        block = '' if tap.diffssl_index is None else str(tap.diffssl_index)
        lines.append(f'{tap.name:<{width}} {block:>5} {tap.stage:<8} {tap.channels:>8} {tap.stride:>6}')
    return '\n'.join(lines)


def resolve_taps(taps: Sequence[UNetTap], blocks: Sequence[Union[str, int]]) -> List[UNetTap]:
    """Look up taps by submodule name or by diffssl block number.

    Args:
        taps (Sequence[UNetTap]): The U-Net's taps, from :func:`list_unet_taps`.
        blocks (Sequence[str | int]): Names such as ``'mid_block'`` or ``'up_blocks.1.attentions.1'``, or
            1-based diffssl block numbers such as ``24``.

    Returns:
        list[UNetTap]: The taps, in the order given.

    Raises:
        KeyError: For an unknown name or number; the message lists the valid ones.
        TypeError: For an entry that is neither a string nor an integer.
    """
    by_name = {tap.name: tap for tap in taps}
    by_index = {tap.diffssl_index: tap for tap in taps if tap.diffssl_index is not None}
    resolved = []
    for block in blocks:
        if isinstance(block, bool) or not isinstance(block, (str, int)):
            raise TypeError(f'out_blocks entries are submodule names (str) or diffssl block numbers (int), '
                            f'got {block!r} of type {type(block).__name__}')
        if isinstance(block, int):
            if block not in by_index:
                raise KeyError(f'diffssl block {block} does not exist in this U-Net; valid blocks are '
                               f'{min(by_index)}..{max(by_index)}')
            resolved.append(by_index[block])
        else:
            if block not in by_name:
                raise KeyError(f'{block!r} is not a tappable block of this U-Net; valid names are: '
                               f'{", ".join(by_name)}')
            resolved.append(by_name[block])
    return resolved


def decoder_tap_at_stride(taps: Sequence[UNetTap], stride: int) -> Optional[UNetTap]:
    """The last decoder layer output at ``stride``: the final features the decoder computes at that scale.

    Only layer outputs (resnets and attentions) count, so a level is represented by its last layer before its
    upsampler. Returns None when the decoder has no layer at ``stride``.
    """
    candidates = [tap for tap in taps if tap.stage == 'decoder' and tap.kind == 'layer' and tap.stride == stride]
    return candidates[-1] if candidates else None


def mirror_encoder_tap(taps: Sequence[UNetTap], decoder_tap: UNetTap) -> UNetTap:
    """The encoder output whose skip connection the decoder layer ``decoder_tap`` concatenates: its mirror.

    The encoder pushes a skip after ``conv_in``, after each layer and after each downsampler (the taps with a
    diffssl number); the decoder's layers pop them in reverse order, so the g-th decoder layer mirrors the g-th
    skip from the end, at the same stride.

    Args:
        taps (Sequence[UNetTap]): The U-Net's taps, from :func:`list_unet_taps`.
        decoder_tap (UNetTap): A decoder layer (a resnet or attention output).
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
