"""Convert OpenAI guided-diffusion ("ADM") U-Net state dicts to diffusers' ``UNet2DModel`` layout and back.

The two layouts hold the same modules under different names:

=============================================  ===============================================
guided-diffusion ``UNetModel``                 diffusers ``UNet2DModel``
=============================================  ===============================================
``time_embed.0`` / ``time_embed.2``            ``time_embedding.linear_1`` / ``linear_2``
``label_emb``                                  ``class_embedding``
``input_blocks.0.0``                           ``conv_in``
``input_blocks.i.0`` (ResBlock)                ``down_blocks.l.resnets.k``
``input_blocks.i.1`` (AttentionBlock)          ``down_blocks.l.attentions.k``
``input_blocks.i.0`` (down ResBlock / ``op``)  ``down_blocks.l.downsamplers.0`` (/ ``.conv``)
``middle_block.0`` / ``.1`` / ``.2``           ``mid_block.resnets.0`` / ``attentions.0`` / ``resnets.1``
``output_blocks.i.0`` / ``.1``                 ``up_blocks.u.resnets.k`` / ``attentions.k``
``output_blocks.i.{1,2}`` (up ResBlock/conv)   ``up_blocks.u.upsamplers.0`` (/ ``.conv``)
``out.0`` / ``out.2``                          ``conv_norm_out`` / ``conv_out``
=============================================  ===============================================

Inside a ResBlock, ``in_layers.0/2``, ``emb_layers.1``, ``out_layers.0/3`` and ``skip_connection`` are
``norm1``, ``conv1``, ``time_emb_proj``, ``norm2``, ``conv2`` and ``conv_shortcut``. An AttentionBlock's fused
``qkv`` 1-D convolution ``(3C, C, 1)`` splits into ``to_q``, ``to_k`` and ``to_v`` ``(C, C)``: in the legacy head
order (``QKVAttentionLegacy``) its rows are ``[q_h, k_h, v_h]`` per head ``h``; in the new order
(``use_new_attention_order``, the 64x64 model) they are ``[q, k, v]``, each holding every head. ``proj_out`` is
``to_out.0``. The remaining numerics already agree: both embed timesteps as ``[cos, sin]`` of the same
frequencies (diffusers with ``flip_sin_to_cos=True, freq_shift=0``), both condition with scale-shift norm, and
both resample in residual blocks by nearest upsampling / 2x2 average pooling of the input and the hidden state.

:func:`adm_key_map` derives the parameter correspondence from a ``UNet2DModel`` config, so one table serves both
directions; the converters check that every source key is used exactly once and every target key is filled.
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import torch
from diffusers import UNet2DModel
from torch import Tensor

from .presets import ADM_BLOCK_TYPES

RESBLOCK_PARAMS = {
    'in_layers.0': 'norm1',
    'in_layers.2': 'conv1',
    'emb_layers.1': 'time_emb_proj',
    'out_layers.0': 'norm2',
    'out_layers.3': 'conv2',
    'skip_connection': 'conv_shortcut',
}


@dataclass(frozen=True)
class KeyGroup:
    """ADM parameter(s) and the diffusers parameter(s) holding the same values.

    Args:
        adm_key (str): The guided-diffusion key.
        diffusers_keys (tuple[str, ...]): The diffusers key, or the ``to_q``, ``to_k``, ``to_v`` keys of a fused
            ``qkv`` parameter.
        kind (str): ``'copy'`` (same tensor), ``'conv1d'`` (a ``(C, C, 1)`` 1-D convolution weight that diffusers
            holds as a ``(C, C)`` linear weight) or ``'qkv'`` (the fused attention projection).
        heads (int): Attention heads, for ``'qkv'``. Defaults to 1.
        new_attention_order (bool): For ``'qkv'``: ``[q, k, v]`` instead of the legacy per-head order.
    """
    adm_key: str
    diffusers_keys: Tuple[str, ...]
    kind: str = 'copy'
    heads: int = 1
    new_attention_order: bool = False

    def to_diffusers(self, value: Tensor) -> Tuple[Tensor, ...]:
        """Split or reshape an ADM tensor into the diffusers tensor(s)."""
        if self.kind == 'copy':
            return (value, )
        if self.kind == 'conv1d':
            return (value.squeeze(-1), )
        rows = value.shape[0] // 3
        trailing = value.shape[1:2]  # (C,) for the weight, () for the bias
        if self.new_attention_order:
            parts = value.reshape(3, rows, *trailing)
        else:
            parts = value.reshape(self.heads, 3, rows // self.heads, *trailing).transpose(0, 1)
        return tuple(part.reshape(rows, *trailing).contiguous() for part in parts)

    def to_adm(self, values: Sequence[Tensor]) -> Tensor:
        """The inverse of :meth:`to_diffusers`."""
        if self.kind == 'copy':
            return values[0]
        if self.kind == 'conv1d':
            return values[0].unsqueeze(-1)
        rows = values[0].shape[0]
        trailing = values[0].shape[1:]
        if self.new_attention_order:
            fused = torch.stack(tuple(values))
        else:
            fused = torch.stack([value.reshape(self.heads, rows // self.heads, *trailing) for value in values], 1)
        return fused.reshape(3 * rows, *trailing, *((1, ) if trailing else ())).contiguous()


def _check_adm_config(config: dict) -> None:
    """Fail unless a ``UNet2DModel`` config is one that guided-diffusion can express."""
    expected = dict(flip_sin_to_cos=True, freq_shift=0, time_embedding_type='positional', class_embed_type=None,
                    mid_block_type='UNetMidBlock2D', add_attention=True, act_fn='silu', norm_num_groups=32,
                    attn_norm_num_groups=32, time_embedding_dim=None)
    differing = {key: config.get(key, value) for key, value in expected.items() if config.get(key, value) != value}
    allowed = set(ADM_BLOCK_TYPES.values())
    down, up = config['down_block_types'], config['up_block_types']
    pairs = set(zip(down, reversed(up)))
    if differing or not pairs <= allowed or config['downsample_type'] != config['upsample_type']:
        raise ValueError(f'this UNet2DModel config has no guided-diffusion equivalent: settings {differing} (need '
                         f'{expected}), block pairs {sorted(pairs)} (allowed {sorted(allowed)}), resampling '
                         f'{config["downsample_type"]!r}/{config["upsample_type"]!r}')


def _meta_unet(config: dict) -> UNet2DModel:
    """``UNet2DModel(**config)`` on the ``meta`` device: its keys, shapes and modules without weights."""
    with torch.device('meta'):
        return UNet2DModel(**{key: value for key, value in dict(config).items() if not key.startswith('_')})


def adm_key_map(config: dict, new_attention_order: bool = False) -> List[KeyGroup]:
    """The parameter correspondence between an ADM U-Net and the ``UNet2DModel`` built from ``config``.

    Args:
        config (dict): ``UNet2DModel`` keyword arguments (or its ``config``) of an ADM-layout U-Net.
        new_attention_order (bool): The ADM model uses ``QKVAttention`` (``--use_new_attention_order``) rather
            than ``QKVAttentionLegacy``. Defaults to False.

    Returns:
        list[KeyGroup]: One entry per ADM parameter.
    """
    return _key_map(_meta_unet(config), new_attention_order)


def _key_map(target: UNet2DModel, new_attention_order: bool) -> List[KeyGroup]:
    """:func:`adm_key_map` for an already built (meta) ``UNet2DModel``."""
    config = dict(target.config)
    _check_adm_config(config)
    target_keys = set(target.state_dict())
    groups: List[KeyGroup] = []

    def module(adm: str, diffusers: str) -> None:
        for name in ('weight', 'bias'):
            if f'{diffusers}.{name}' in target_keys:
                groups.append(KeyGroup(f'{adm}.{name}', (f'{diffusers}.{name}', )))

    def resblock(adm: str, diffusers: str) -> None:
        for adm_name, diffusers_name in RESBLOCK_PARAMS.items():
            module(f'{adm}.{adm_name}', f'{diffusers}.{diffusers_name}')

    def attention(adm: str, diffusers: str) -> None:
        module(f'{adm}.norm', f'{diffusers}.group_norm')
        heads = target.get_submodule(diffusers).heads
        for name in ('weight', 'bias'):
            groups.append(
                KeyGroup(f'{adm}.qkv.{name}', tuple(f'{diffusers}.to_{x}.{name}' for x in 'qkv'), 'qkv', heads,
                         new_attention_order))
        groups.append(KeyGroup(f'{adm}.proj_out.weight', (f'{diffusers}.to_out.0.weight', ), 'conv1d'))
        groups.append(KeyGroup(f'{adm}.proj_out.bias', (f'{diffusers}.to_out.0.bias', )))

    def resampler(adm: str, diffusers: str, conv_name: str) -> None:
        if config['downsample_type'] == 'resnet':
            resblock(adm, diffusers)
        else:
            module(f'{adm}.{conv_name}', f'{diffusers}.conv')

    num_levels = len(config['block_out_channels'])
    layers = config['layers_per_block']
    attends = [down.startswith('Attn') for down in config['down_block_types']]
    module('time_embed.0', 'time_embedding.linear_1')
    module('time_embed.2', 'time_embedding.linear_2')
    if config.get('num_class_embeds') is not None:
        module('label_emb', 'class_embedding')
    module('input_blocks.0.0', 'conv_in')
    index = 1
    for level in range(num_levels):
        for k in range(layers):
            resblock(f'input_blocks.{index}.0', f'down_blocks.{level}.resnets.{k}')
            if attends[level]:
                attention(f'input_blocks.{index}.1', f'down_blocks.{level}.attentions.{k}')
            index += 1
        if level != num_levels - 1:
            resampler(f'input_blocks.{index}.0', f'down_blocks.{level}.downsamplers.0', 'op')
            index += 1
    resblock('middle_block.0', 'mid_block.resnets.0')
    attention('middle_block.1', 'mid_block.attentions.0')
    resblock('middle_block.2', 'mid_block.resnets.1')
    index = 0
    for up_index, level in enumerate(reversed(range(num_levels))):
        for k in range(layers + 1):
            resblock(f'output_blocks.{index}.0', f'up_blocks.{up_index}.resnets.{k}')
            position = 1
            if attends[level]:
                attention(f'output_blocks.{index}.1', f'up_blocks.{up_index}.attentions.{k}')
                position = 2
            if level and k == layers:
                resampler(f'output_blocks.{index}.{position}', f'up_blocks.{up_index}.upsamplers.0', 'conv')
            index += 1
    module('out.0', 'conv_norm_out')
    module('out.2', 'conv_out')

    mapped = [key for group in groups for key in group.diffusers_keys]
    unmapped = sorted(target_keys - set(mapped))
    if unmapped or len(mapped) != len(set(mapped)):
        raise ValueError(f'this UNet2DModel has parameters {unmapped[:8]} that guided-diffusion\'s UNetModel does '
                         f'not have')
    return groups


def _check_coverage(source: Dict[str, Tensor], wanted: Sequence[str], what: str) -> None:
    missing = sorted(set(wanted) - set(source))
    leftover = sorted(set(source) - set(wanted))
    if missing or leftover:
        raise ValueError(f'refusing a partial conversion of the {what}: {len(missing)} expected keys are missing '
                         f'{missing[:8]} and {len(leftover)} keys would be left over {leftover[:8]}')


def convert_adm_to_diffusers(state_dict: Dict[str, Tensor], config: dict,
                             new_attention_order: bool = False) -> Dict[str, Tensor]:
    """Turn an ADM state dict into the state dict of ``UNet2DModel(**config)``.

    Args:
        state_dict (dict[str, Tensor]): The guided-diffusion weights.
        config (dict): The target ``UNet2DModel`` keyword arguments (see :meth:`AdmArchitecture.unet_config`).
        new_attention_order (bool): See :func:`adm_key_map`. Defaults to False.

    Returns:
        dict[str, Tensor]: The diffusers weights, as float32.

    Raises:
        ValueError: When a source key is unused or a target key unfilled, or a shape does not fit.
    """
    target = _meta_unet(config)
    groups = _key_map(target, new_attention_order)
    _check_coverage(state_dict, [group.adm_key for group in groups], 'ADM state dict')
    shapes = {key: value.shape for key, value in target.state_dict().items()}
    converted = {}
    for group in groups:
        for key, value in zip(group.diffusers_keys, group.to_diffusers(state_dict[group.adm_key].float())):
            if value.shape != shapes[key]:
                raise ValueError(f'{group.adm_key} {tuple(state_dict[group.adm_key].shape)} does not fit {key} '
                                 f'{tuple(shapes[key])}: do the flags contradict the weights?')
            converted[key] = value
    return converted


def convert_diffusers_to_adm(state_dict: Dict[str, Tensor], config: dict,
                             new_attention_order: bool = False) -> Dict[str, Tensor]:
    """Turn the state dict of an ADM-layout ``UNet2DModel(**config)`` into guided-diffusion's layout.

    Args:
        state_dict (dict[str, Tensor]): The diffusers weights.
        config (dict): The ``UNet2DModel`` config.
        new_attention_order (bool): Write ``qkv`` in ``QKVAttention``'s order instead of the legacy one.
            Defaults to False.

    Returns:
        dict[str, Tensor]: The guided-diffusion weights.
    """
    groups = adm_key_map(config, new_attention_order)
    _check_coverage(state_dict, [key for group in groups for key in group.diffusers_keys], 'diffusers state dict')
    return {group.adm_key: group.to_adm([state_dict[key] for key in group.diffusers_keys]) for group in groups}
