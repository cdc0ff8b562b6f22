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
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from diffusers import UNet2DModel
from torch import Tensor

from mmdiff.models.backbones.unet_configs import ADM_BLOCK_TYPES, adm_unet_config

RESBLOCK_PARAMS = {
    'in_layers.0': 'norm1',
    'in_layers.2': 'conv1',
    'emb_layers.1': 'time_emb_proj',
    'out_layers.0': 'norm2',
    'out_layers.3': 'conv2',
    'skip_connection': 'conv_shortcut',
}
REQUIRED_ADM_KEYS = ('time_embed.0.weight', 'input_blocks.0.0.weight', 'out.2.weight')

_ADM_COMMON = dict(attention_resolutions=(32, 16, 8), learn_sigma=True, resblock_updown=True,
                   use_scale_shift_norm=True, use_new_attention_order=False, diffusion_steps=1000,
                   noise_schedule='linear')
# the MODEL_FLAGS of the released checkpoints, from guided-diffusion's README (channel_mult from script_util.py)
GUIDED_DIFFUSION_MODELS = {
    '64x64_diffusion': dict(_ADM_COMMON, image_size=64, num_channels=192, channel_mult=(1, 2, 3, 4),
                            num_res_blocks=3, num_head_channels=64, class_cond=True, use_new_attention_order=True,
                            noise_schedule='cosine'),
    '128x128_diffusion': dict(_ADM_COMMON, image_size=128, num_channels=256, channel_mult=(1, 1, 2, 3, 4),
                              num_res_blocks=2, num_heads=4, class_cond=True),
    '256x256_diffusion': dict(_ADM_COMMON, image_size=256, num_channels=256, channel_mult=(1, 1, 2, 2, 4, 4),
                              num_res_blocks=2, num_head_channels=64, class_cond=True),
    '256x256_diffusion_uncond': dict(_ADM_COMMON, image_size=256, num_channels=256,
                                     channel_mult=(1, 1, 2, 2, 4, 4), num_res_blocks=2, num_head_channels=64,
                                     class_cond=False),
    '512x512_diffusion': dict(_ADM_COMMON, image_size=512, num_channels=256, channel_mult=(0.5, 1, 1, 2, 2, 4, 4),
                              num_res_blocks=2, num_head_channels=64, class_cond=True),
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


@dataclass(frozen=True)
class AdmArchitecture:
    """The architecture of an ADM U-Net as far as its weights record it.

    Args:
        in_channels (int): Image channels.
        out_channels (int): Output channels (twice ``in_channels`` with a learned variance).
        model_channels (int): Width of the first level (``--num_channels``).
        channel_mult (tuple[int, ...]): Width multiplier per level.
        num_res_blocks (int): Residual blocks per encoder level.
        attention_levels (tuple[bool, ...]): Per level, whether it has self-attention.
        resblock_updown (bool): Whether residual blocks resample (else strided / nearest-upsample convolutions).
        use_scale_shift_norm (bool): FiLM-style time conditioning.
        num_classes (int, optional): Classes of a class-conditional model.
    """
    in_channels: int
    out_channels: int
    model_channels: int
    channel_mult: Tuple[int, ...]
    num_res_blocks: int
    attention_levels: Tuple[bool, ...]
    resblock_updown: bool
    use_scale_shift_norm: bool
    num_classes: Optional[int]

    @property
    def learn_sigma(self) -> bool:
        return self.out_channels == 2 * self.in_channels

    def attention_resolutions(self, image_size: int) -> Tuple[int, ...]:
        """The ``--attention_resolutions`` flag (feature-map sizes in pixels) for a model of ``image_size``."""
        return tuple(image_size // 2**level for level, attends in enumerate(self.attention_levels) if attends)

    def unet_config(self, image_size: int, num_head_channels: Optional[int] = None,
                    num_heads: Optional[int] = None) -> dict:
        """``UNet2DModel`` keyword arguments for this architecture (heads are not recorded in the weights)."""
        return adm_unet_config(
            image_size=image_size,
            model_channels=self.model_channels,
            channel_mult=self.channel_mult,
            num_res_blocks=self.num_res_blocks,
            attention_resolutions=self.attention_resolutions(image_size),
            num_head_channels=num_head_channels,
            num_heads=num_heads,
            learn_sigma=self.learn_sigma,
            resblock_updown=self.resblock_updown,
            use_scale_shift_norm=self.use_scale_shift_norm,
            in_channels=self.in_channels,
            num_classes=self.num_classes)


def check_adm_flags(arch: AdmArchitecture, flags: dict) -> None:
    """Fail when guided-diffusion flags contradict what the weights record.

    Args:
        arch (AdmArchitecture): The architecture read from the weights.
        flags (dict): guided-diffusion flags by their names (``num_channels``, ``channel_mult``,
            ``num_res_blocks``, ``attention_resolutions`` with ``image_size``, ``learn_sigma``, ``class_cond``,
            ``use_scale_shift_norm``, ``resblock_updown``); flags the weights cannot show are not checked.

    Raises:
        ValueError: Listing every contradicting flag with its value and the value in the weights.
    """
    recorded = dict(
        num_channels=arch.model_channels,
        channel_mult=tuple(arch.channel_mult),
        num_res_blocks=arch.num_res_blocks,
        learn_sigma=arch.learn_sigma,
        class_cond=arch.num_classes is not None,
        use_scale_shift_norm=arch.use_scale_shift_norm,
        resblock_updown=arch.resblock_updown)
    if flags.get('image_size') is not None:
        recorded['attention_resolutions'] = tuple(sorted(arch.attention_resolutions(flags['image_size'])))
    given = {key: tuple(sorted(value)) if key == 'attention_resolutions' else
             tuple(value) if isinstance(value, (list, tuple)) else value
             for key, value in flags.items() if key in recorded and value is not None}
    contradictions = {key: (value, recorded[key]) for key, value in given.items() if value != recorded[key]}
    if contradictions:
        raise ValueError('the flags contradict the weights (flag value, value in the weights): ' + ', '.join(
            f'{key}: {flag!r} vs {weights!r}' for key, (flag, weights) in contradictions.items()))


def _describe(state_dict: object) -> str:
    if not isinstance(state_dict, dict):
        return f'a {type(state_dict).__name__}'
    keys = list(state_dict)
    return f'a dict with {len(keys)} keys, starting {keys[:6]}'


def _block_indices(state_dict: Dict[str, Tensor], prefix: str) -> List[int]:
    return sorted({int(key.split('.')[1]) for key in state_dict if key.startswith(prefix + '.')})


def infer_adm_architecture(state_dict: Dict[str, Tensor]) -> AdmArchitecture:
    """Read an ADM U-Net's architecture from its state dict.

    Args:
        state_dict (dict[str, Tensor]): A guided-diffusion ``UNetModel`` state dict.

    Returns:
        AdmArchitecture: Everything but the attention heads and the training resolution, which the weights do
        not record.

    Raises:
        ValueError: When the dict is not an ADM U-Net state dict; the message says what was found.
    """
    if not isinstance(state_dict, dict) or not all(key in state_dict for key in REQUIRED_ADM_KEYS):
        raise ValueError(f'not a guided-diffusion (ADM) UNetModel state dict: expected keys {list(REQUIRED_ADM_KEYS)}'
                         f', found {_describe(state_dict)}')
    model_channels = state_dict['time_embed.0.weight'].shape[1]
    in_channels = state_dict['input_blocks.0.0.weight'].shape[1]
    out_channels = state_dict['out.2.weight'].shape[0]
    outputs = _block_indices(state_dict, 'output_blocks')
    # the last output block of every level but the first ends with an upsampler, after the resblock (and attention)
    def has_upsampler(i: int) -> bool:
        return any(f'output_blocks.{i}.{j}.{name}' in state_dict for j in (1, 2)
                   for name in ('in_layers.0.weight', 'conv.weight'))

    upsampler_blocks = [i for i in outputs if has_upsampler(i)]
    blocks_per_level = upsampler_blocks[0] + 1 if upsampler_blocks else len(outputs)
    num_levels = len(outputs) // blocks_per_level
    widths, attention_levels = [], []
    for up_index in range(num_levels):
        first = up_index * blocks_per_level
        widths.append(state_dict[f'output_blocks.{first}.0.out_layers.3.weight'].shape[0])
        attention_levels.append(f'output_blocks.{first}.1.qkv.weight' in state_dict)
    widths.reverse()
    attention_levels.reverse()
    if any(width % model_channels for width in widths):
        raise ValueError(f'level widths {widths} are not multiples of model_channels={model_channels}; fractional '
                         f'channel_mult values are not supported')
    resblock_updown = any(f'output_blocks.{i}.{j}.in_layers.0.weight' in state_dict for i in upsampler_blocks
                          for j in (1, 2))
    emb_rows = state_dict['input_blocks.1.0.emb_layers.1.weight'].shape[0]
    label_emb = state_dict.get('label_emb.weight')
    return AdmArchitecture(
        in_channels=in_channels,
        out_channels=out_channels,
        model_channels=model_channels,
        channel_mult=tuple(width // model_channels for width in widths),
        num_res_blocks=blocks_per_level - 1,
        attention_levels=tuple(attention_levels),
        resblock_updown=resblock_updown,
        use_scale_shift_norm=emb_rows == 2 * widths[0],
        num_classes=None if label_emb is None else label_emb.shape[0])


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
