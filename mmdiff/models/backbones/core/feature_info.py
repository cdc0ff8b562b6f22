"""What a backbone output holds, declared before any forward pass, from the model's taps and the pyramid options."""
from typing import Optional, Sequence, Tuple, Union

from mmdiff.utils.choices import check_choice
from .backbone_inputs import is_integer
from .pyramid import (DEFAULT_STRIDES, FUSIONS, PYRAMIDS, FeatureLevel, attention_map_taps, fused_channels,
                      select_levels, simple_levels)
from .simple_pyramid import SIMPLE_SCALES
from .taps import Tap


def declare_feature_info(taps: Sequence[Tap],
                         timesteps: Tuple[int, ...],
                         timestep_fusion: str = 'concat',
                         out_strides: Optional[Sequence[int]] = DEFAULT_STRIDES,
                         out_blocks: Optional[Sequence[Union[str, int]]] = None,
                         resample_missing_strides: bool = False,
                         attention_maps: Optional[Sequence[int]] = None,
                         context_tokens: Optional[int] = None,
                         projection_channels: Optional[Sequence[int]] = None,
                         model: str = 'U-Net',
                         pyramid: str = 'resample') -> Tuple[FeatureLevel, ...]:
    """The outputs of a :class:`DiffusionUNetBackbone` with these options, from its U-Net's taps alone.

    The levels are :func:`select_levels`'s (sorted by stride, ties in forward order), each with the
    cross-attention maps :func:`attention_map_taps` appends to it. A level's channels are its tap's, plus one per
    context token when maps are appended, times ``len(timesteps)`` for ``'concat'``, or its projection's width.

    Args:
        taps (Sequence[Tap]): The U-Net's taps (:func:`list_config_taps` of its config, with the VAE's latent
            stride and the context's tokens).
        timesteps (tuple[int, ...]): The noise steps fused into every output.
        timestep_fusion (str): One of :data:`FUSIONS`. Defaults to ``'concat'``.
        out_strides (Sequence[int], optional): Strides of the pyramid. Defaults to (4, 8, 16, 32).
        out_blocks (Sequence[str | int], optional): Taps by name or diffssl number, instead. Defaults to None.
        resample_missing_strides (bool): Resample the nearest decoder stride for a stride the decoder lacks.
            Defaults to False.
        attention_maps (Sequence[int], optional): Output strides that get the cross-attention maps appended.
            Defaults to None.
        context_tokens (int, optional): Tokens of the context: the channels the maps add. Defaults to None.
        projection_channels (Sequence[int], optional): Per output, the width of its 1x1 projection. Defaults to
            None.
        model (str): What the taps belong to, for the messages. Defaults to ``'U-Net'``.
        pyramid (str): ``'resample'``, or ``'simple'``: ViTDet's simple pyramid makes every stride of
            ``out_strides`` from one block (:func:`simple_levels`), its channels a quarter, a half, all and all of
            the block's at x4, x2, x1 and x1/2 of its resolution. Defaults to ``'resample'``.

    Returns:
        tuple[FeatureLevel, ...]: One record per output, in output order.
    """
    check_choice('timestep_fusion', timestep_fusion, FUSIONS)
    check_choice('pyramid', pyramid, PYRAMIDS)
    if pyramid == 'simple' and (projection_channels is not None or attention_maps is not None):
        raise ValueError("pyramid='simple' makes each level's channels with ViTDet's stages; it takes no "
                         'projection_channels or attention_maps (give them with the default pyramid=\'resample\')')
    levels = (simple_levels(taps, out_strides, out_blocks, model) if pyramid == 'simple' else
              select_levels(taps, out_strides, out_blocks, resample_missing_strides, model))
    level_maps = attention_map_taps(taps, levels, attention_maps, model)
    if projection_channels is not None:
        if not isinstance(projection_channels, (list, tuple)) or not all(
                is_integer(width) and width >= 1 for width in projection_channels):
            raise ValueError(f'projection_channels must be a sequence of widths >= 1, one per output, got '
                             f'{projection_channels!r}')
        if len(projection_channels) != len(levels):
            raise ValueError(f'projection_channels has {len(projection_channels)} widths for '
                             f'{len(levels)} outputs (strides {[stride for _, stride in levels]})')
    feature_info = []
    for index, ((tap, stride), maps) in enumerate(zip(levels, level_maps)):
        fused = fused_channels(tap.channels + (context_tokens if maps else 0), len(timesteps), timestep_fusion)
        if pyramid == 'simple' and not (fused * SIMPLE_SCALES[tap.stride / stride]).is_integer():
            raise ValueError(f"pyramid='simple' divides the channels of {tap.name} ({fused} after fusion) by "
                             f'{round(1 / SIMPLE_SCALES[tap.stride / stride])} at stride {stride}; they must be a '
                             f'multiple of it')
        if pyramid == 'simple':
            channels, projected_from = int(fused * SIMPLE_SCALES[tap.stride / stride]), fused
        elif projection_channels is not None:
            channels, projected_from = projection_channels[index], fused
        else:
            channels, projected_from = fused, None
        feature_info.append(
            FeatureLevel(channels=channels, stride=stride, block=tap.name, source_stride=tap.stride,
                         timesteps=tuple(timesteps), fusion=timestep_fusion, attention_maps=maps,
                         projected_from=projected_from, pyramid=pyramid))
    return tuple(feature_info)
