"""Picking one backbone output for a head, with errors that name the bad value."""
from typing import Sequence

from torch import Tensor


def select_feature(feats: Sequence[Tensor], in_index: int, head: str) -> Tensor:
    """The ``in_index``-th backbone output, checked to be an ``(N, C, H, W)`` map.

    Args:
        feats (Sequence[Tensor]): Backbone outputs.
        in_index (int): Which output; negative counts from the end.
        head (str): The head's name, for messages.
    """
    if not -len(feats) <= in_index < len(feats):
        raise IndexError(f'{head}: in_index={in_index} is out of range for {len(feats)} backbone outputs; '
                         f'valid: {-len(feats)}..{len(feats) - 1}')
    feature = feats[in_index]
    if feature.dim() != 4:
        raise ValueError(f'{head} takes (N, C, H, W) feature maps, got {tuple(feature.shape)} from backbone '
                         f"output {in_index}; use timestep_fusion='concat' or 'mean' (or a fusion head for 'stack')")
    return feature
