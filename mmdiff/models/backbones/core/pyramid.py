"""The feature pyramid of a diffusion backbone: which taps make its levels, and how each level is assembled."""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .simple_pyramid import SIMPLE_SCALES, simple_scale
from .taps import Tap, final_stage, final_tap_at_stride, format_taps, resolve_taps

FUSIONS = ('concat', 'mean', 'stack')
DEFAULT_STRIDES = (4, 8, 16, 32)
# how a level at another stride than its tap's is made: parameter-free resampling, or ViTDet's simple pyramid
PYRAMIDS = ('resample', 'simple')

Level = Tuple[Tap, int]  # a tap and the stride its level is output at


@dataclass(frozen=True)
class FeatureLevel:
    """One output of a diffusion backbone, as declared before any forward pass.

    Args:
        channels (int): Channels of the output (after timestep fusion and projection).
        stride (int): Input pixels per output pixel: the output is ``ceil(H / stride) x ceil(W / stride)``.
        block (str): The model's submodule the features are tapped from (a tap name).
        source_stride (int): Stride of that submodule's output; differs from ``stride`` when the level is resampled.
        timesteps (tuple[int, ...]): Noise steps fused into this output.
        fusion (str): How the timesteps are fused: ``'concat'``, ``'mean'`` or ``'stack'`` (an extra T axis:
            the output is ``(N, T, channels, h, w)``).
        attention_maps (tuple[str, ...]): The cross-attention maps whose mean is appended to the block's channels
            (one channel per context token, VPD's extra channels); empty for none.
        projected_from (int, optional): Channels before the output's 1x1 projection or simple-pyramid stage (the
            fused tap and maps); None without either. Defaults to None.
        pyramid (str): ``'resample'`` (bilinear up, average-pooling down) or ``'simple'`` (ViTDet's trainable
            stage, :func:`~mmdiff.models.backbones.core.simple_pyramid.simple_scale`). Defaults to ``'resample'``.
    """
    channels: int
    stride: int
    block: str
    source_stride: int
    timesteps: Tuple[int, ...]
    fusion: str
    attention_maps: Tuple[str, ...] = ()
    projected_from: Optional[int] = None
    pyramid: str = 'resample'

    def __str__(self) -> str:
        made = 'by the simple pyramid' if self.pyramid == 'simple' else 'resampled'
        resampled = '' if self.source_stride == self.stride else f' ({made} from stride {self.source_stride})'
        return (f'stride {self.stride:>3}, {self.channels:>5} channels: {self.block} at t={list(self.timesteps)}, '
                f'{self.fusion}{resampled}'
                + (f', + the mean of {len(self.attention_maps)} cross-attention maps' if self.attention_maps else '')
                + ('' if self.projected_from is None or self.pyramid == 'simple' else
               f', projected from {self.projected_from} channels'))


def _tap_for_stride(taps: Sequence[Tap], stride: int, resample: bool) -> Tap:
    tap = final_tap_at_stride(taps, stride)
    if tap is not None:
        return tap
    stage = final_stage(taps)
    native = sorted({tap.stride for tap in taps if tap.stage == stage and tap.kind == 'layer'})
    if not isinstance(stride, int) or stride < 1 or not math.log2(stride).is_integer():
        raise ValueError(f'stride {stride!r} cannot be produced: strides are powers of two; the {stage} '
                         f'has {native}')
    if not resample:
        raise ValueError(f'the {stage} has no output at stride {stride} (it has {native}); set '
                         f'resample_missing_strides=True to resample the nearest one')
    nearest = min(native, key=lambda s: (abs(math.log2(s / stride)), s))
    return final_tap_at_stride(taps, nearest)


def select_levels(taps: Sequence[Tap], out_strides: Optional[Sequence[int]],
                  out_blocks: Optional[Sequence[Union[str, int]]], resample: bool, model: str = 'U-Net') -> List[Level]:
    """The pyramid as (tap, output stride) pairs, sorted by stride, ties in forward order.

    Args:
        taps (Sequence[Tap]): The U-Net's taps in forward order.
        out_strides (Sequence[int], optional): Strides; each level is the decoder's last layer at that stride.
        out_blocks (Sequence[str | int], optional): Taps by name or diffssl number (exactly one of the two).
        resample (bool): Resample the nearest decoder stride when ``out_strides`` names one the decoder lacks.
        model (str): What the taps belong to, for the messages. Defaults to ``'U-Net'``.
    """
    out_strides, out_blocks = _as_tuple(out_strides), _as_tuple(out_blocks)
    if out_blocks is not None and out_strides == DEFAULT_STRIDES:
        out_strides = None  # out_blocks takes over from the default strides
    if (out_strides is None) == (out_blocks is None):
        raise ValueError(f'give exactly one of out_strides and out_blocks (set the other to None), got '
                         f'out_strides={out_strides!r} and out_blocks={out_blocks!r}')
    if out_blocks is not None:
        if not out_blocks:
            raise ValueError('out_blocks is empty; name at least one tap:\n' + format_taps(taps))
        levels = [(tap, tap.stride) for tap in resolve_taps(taps, out_blocks, model)]
    else:
        if not out_strides:
            raise ValueError('out_strides is empty; give at least one stride, e.g. (4, 8, 16, 32)')
        levels = [(_tap_for_stride(taps, stride, resample), stride) for stride in out_strides]
    names = [(tap.name, stride) for tap, stride in levels]
    if len(set(names)) != len(names):
        raise ValueError(f'out_strides={out_strides!r} / out_blocks={out_blocks!r} repeat an output: '
                         f'{[f"{name} at stride {stride}" for name, stride in names]}')
    order = {tap.name: index for index, tap in enumerate(taps)}
    return sorted(levels, key=lambda level: (level[1], order[level[0].name]))


def simple_levels(taps: Sequence[Tap], out_strides: Optional[Sequence[int]],
                  out_blocks: Optional[Sequence[Union[str, int]]], model: str = 'U-Net') -> List[Level]:
    """The levels of ViTDet's simple pyramid: one tap (``out_blocks``' only entry, else the model's last) at every
    stride of ``out_strides`` (default (4, 8, 16, 32)), each within x4 up and x2 down of the tap's stride."""
    out_blocks = _as_tuple(out_blocks)
    if out_blocks is not None and len(out_blocks) != 1:
        raise ValueError(f"pyramid='simple' makes every level from one block; out_blocks names {len(out_blocks)}: "
                         f'{out_blocks!r} (give one, or None for the last)')
    tap = taps[-1] if out_blocks is None else resolve_taps(taps, out_blocks, model)[0]
    strides = _as_tuple(out_strides) or DEFAULT_STRIDES
    valid = sorted(int(tap.stride / scale) for scale in SIMPLE_SCALES if (tap.stride / scale).is_integer())
    if len(set(strides)) != len(strides) or any(stride not in valid for stride in strides):
        raise ValueError(f"pyramid='simple' makes the strides {valid} from {tap.name} at stride {tap.stride} "
                         f'(x4, x2, x1 and x1/2), got out_strides={out_strides!r}')
    return [(tap, stride) for stride in sorted(strides)]


def level_modules(feature_info: Sequence[FeatureLevel]) -> Optional[nn.ModuleList]:
    """The trainable module of each level: its 1x1 projection, or its simple-pyramid stage (every level has one or
    none has); None when none has."""
    if all(level.projected_from is None for level in feature_info):
        return None
    return nn.ModuleList(
        simple_scale(level.projected_from, level.source_stride / level.stride) if level.pyramid == 'simple' else
        nn.Conv2d(level.projected_from, level.channels, kernel_size=1) for level in feature_info)


def _as_tuple(value) -> Optional[tuple]:
    """A sequence as a tuple, a single stride / block / name as a 1-tuple, None as None."""
    if value is None:
        return None
    return tuple(value) if isinstance(value, (list, tuple)) else (value, )


def fused_channels(channels: int, num_timesteps: int, fusion: str) -> int:
    """Channels of a level of ``channels`` per timestep after timestep fusion (``'concat'`` stacks the T maps along
    channels)."""
    return channels * num_timesteps if fusion == 'concat' else channels


def attention_map_taps(taps: Sequence[Tap], levels: Sequence[Level], strides: Optional[Sequence[int]],
                       model: str = 'U-Net') -> List[Tuple[str, ...]]:
    """Per level, the cross-attention maps VPD appends to it: at each output stride in ``strides``, the maps of
    every encoder and decoder cross-attention at the level's source stride (VPD's ``'up_cross+down_cross'``; the
    middle block's are not used).

    Args:
        taps (Sequence[Tap]): The U-Net's taps, with its ``'attention_map'`` taps.
        levels (Sequence[Level]): The pyramid, from :func:`select_levels`.
        strides (Sequence[int], optional): Output strides that get the maps. None for none.
        model (str): What the taps belong to, for the messages. Defaults to ``'U-Net'``.

    Returns:
        list[tuple[str, ...]]: Map tap names per level (empty where none are appended).
    """
    if strides is None:
        return [() for _ in levels]
    maps = [tap for tap in taps if tap.kind == 'attention_map' and tap.stage in ('encoder', 'decoder')]
    if not maps:
        raise ValueError(f'attention_maps={strides!r} appends cross-attention maps, but this {model} has none (they '
                         f'need a text-conditioned U-Net with a context)')
    output_strides = [stride for _, stride in levels]
    if isinstance(strides, (str, int)) or not strides or len(set(strides)) != len(strides) or any(
            stride not in output_strides for stride in strides):
        raise ValueError(f'attention_maps must be distinct output strides out of {output_strides}, got {strides!r}')
    per_level = []
    for tap, stride in levels:
        names = tuple(m.name for m in maps if m.stride == tap.stride) if stride in strides else ()
        if stride in strides and not names:
            raise ValueError(f'no cross-attention at stride {tap.stride} to append to the stride-{stride} output; '
                             f'the U-Net has them at strides {sorted({m.stride for m in maps})}')
        per_level.append(names)
    return per_level


def level_feature(features: Dict[str, Tensor], level: FeatureLevel, maps_grad: bool = True) -> Tensor:
    """The tapped output of ``level`` from a pass's ``features``, with the mean of its cross-attention maps appended
    (detached unless ``maps_grad``)."""
    feature = features[level.block]
    if not level.attention_maps:
        return feature
    mean_map = torch.stack([features[name] for name in level.attention_maps]).mean(0)
    if not maps_grad:
        mean_map = mean_map.detach()
    return torch.cat([feature, mean_map.to(feature.dtype)], dim=1)


def assemble_level(feature: Tensor, level: FeatureLevel, size: Tuple[int, int], num_draws: int,
                   module: Optional[nn.Module]) -> Tensor:
    """One pyramid level from a tapped output of the (draws x timesteps x images) batch of the model.

    The draws are averaged, the map resampled from the level's ``source_stride`` to its ``stride`` (average pooling
    down, bilinear up; with ``pyramid='simple'``, the level's simple-pyramid stage after fusion), cropped to
    ``ceil(size / stride)``, the timesteps fused and the level's projection applied.

    Args:
        feature (Tensor): ``(K * T * N, C, h, w)``, draws outermost.
        level (FeatureLevel): The level it makes.
        size (tuple[int, int]): The input images' (H, W) before padding.
        num_draws (int): K, the noise draws averaged.
        module (nn.Module, optional): A 1x1 convolution, or the simple-pyramid stage, applied after fusion.

    Returns:
        Tensor: ``(N, C', ceil(H / stride), ceil(W / stride))``, or ``(N, T, C', h, w)`` for ``fusion='stack'``.
    """
    source_stride, stride = level.source_stride, level.stride
    rows, columns = math.ceil(size[0] / stride), math.ceil(size[1] / stride)
    feature = feature.float()
    feature = feature.view(num_draws, -1, *feature.shape[1:]).mean(0) if num_draws > 1 else feature
    if level.pyramid == 'resample':
        if source_stride < stride:
            feature = F.avg_pool2d(feature, stride // source_stride, ceil_mode=True)
        elif source_stride > stride:
            feature = F.interpolate(feature, scale_factor=source_stride // stride, mode='bilinear',
                                    align_corners=False)
        feature = feature[..., :rows, :columns]
    feature = feature.view(len(level.timesteps), -1, *feature.shape[1:]).transpose(0, 1)  # (N, T, C, h, w)
    if level.fusion == 'concat':
        feature = feature.flatten(1, 2)
    elif level.fusion == 'mean':
        feature = feature.mean(1)
    if module is not None:
        feature = (module(feature.flatten(0, 1)).unflatten(0, feature.shape[:2]) if level.fusion == 'stack' else
                   module(feature))
    return feature[..., :rows, :columns]  # the simple pyramid's stage makes the stride: cropped after it
