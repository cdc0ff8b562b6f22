"""DiTF's channel discard: the few channels of a diffusion transformer's hidden state with massive activations,
chosen from a calibration batch (Gan et al. 2025, "Unleashing Diffusion Transformers for Visual Correspondence by
Modulating Massive Activations")."""
from typing import Mapping, Sequence, Union

import torch
from mmengine.dist import all_reduce, is_distributed
from torch import Tensor

from ..core.backbone_inputs import is_integer

NOT_CHOSEN = -1  # a row of the channel buffer that no calibration batch has filled yet


def check_massive_channels(drop: Union[int, Sequence[int]], width: int) -> Union[int, tuple]:
    """``drop_massive_channels`` checked against the blocks' ``width``: a count k in [0, width) of channels to choose
    from a calibration batch, or the channel indices themselves (DiTF's FLUX.1-dev: ``(154, 1446)``)."""
    if is_integer(drop) and 0 <= drop < width:
        return int(drop)
    if (isinstance(drop, (list, tuple)) and drop and len(set(drop)) == len(drop)
            and all(is_integer(channel) and 0 <= channel < width for channel in drop)):
        return tuple(sorted(int(channel) for channel in drop))
    raise ValueError(f'drop_massive_channels must be a count k in [0, {width}) of channels to choose from a '
                     f'calibration batch, or distinct channel indices in [0, {width}), got {drop!r}')


def initial_channels(drop: Union[int, tuple], num_taps: int) -> Tensor:
    """The channel buffer ``(num_taps, k)``: the given indices for every tap, or :data:`NOT_CHOSEN` to calibrate."""
    if isinstance(drop, tuple):
        return torch.tensor(drop, dtype=torch.long).expand(num_taps, -1).clone()
    return torch.full((num_taps, drop), NOT_CHOSEN, dtype=torch.long)


def choose_massive_channels(features: Mapping[str, Tensor], names: Sequence[str], count: int) -> Tensor:
    """Per tap, the ``count`` channels with the largest mean absolute activation over a calibration batch.

    The mean runs over every image, noise draw, timestep and token of the batch, and over every process when
    training is distributed, so each process picks the same channels.

    Args:
        features (Mapping[str, Tensor]): Tap name -> raw block output ``(B, C, h, w)`` (not zeroed, not modulated).
        names (Sequence[str]): The taps, in buffer order.
        count (int): Channels to choose per tap.

    Returns:
        Tensor: ``(len(names), count)`` channel indices, ascending in each row.
    """
    means = torch.stack([features[name].float().abs().mean((0, 2, 3)) for name in names])
    if is_distributed():
        all_reduce(means, op='mean')
    return means.topk(count, dim=1).indices.sort(dim=1).values
