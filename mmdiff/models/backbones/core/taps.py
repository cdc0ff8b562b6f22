"""A tap: one named output of a denoising network that a backbone can return, whatever the model family.

A family lists its taps from the model's configuration alone, in forward order (for a U-Net:
:func:`~mmdiff.models.backbones.unet.taps.list_config_taps`); the core selects them by name, by block number
(:func:`resolve_taps`) or by stride (:func:`decoder_tap_at_stride`), and prints them (:func:`format_taps`).
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union


@dataclass(frozen=True)
class Tap:
    """One tappable submodule output of a denoising network.

    Args:
        name (str): Submodule path inside the model, e.g. ``'up_blocks.1.attentions.1'``.
        channels (int): Channels of the output.
        stride (int): Image pixels per output pixel (the reduction).
        stage (str): ``'encoder'``, ``'middle'`` or ``'decoder'``.
        kind (str): ``'stem'`` (the input convolution), ``'layer'`` (a resnet, attention or transformer block),
            ``'residual'`` (a resnet's ``conv2``, before its shortcut is added), ``'attention_map'`` (a
            cross-attention's probabilities averaged over heads), ``'resample'`` (a down- or upsampler),
            ``'middle'`` or ``'block'`` (a whole down or up block).
        depth (int): How many top-level blocks must run to produce it (0 for the stem).
        diffssl_index (int, optional): For U-Nets, the guided-diffusion block number of this output, if it is one.
    """
    name: str
    channels: int
    stride: int
    stage: str
    kind: str
    depth: int
    diffssl_index: Optional[int] = None


def format_taps(taps: Sequence[Tap]) -> str:
    """A table of taps (name, diffssl block, stage, channels, stride), one line each."""
    width = max([34] + [len(tap.name) for tap in taps])
    lines = [f'{"tap":<{width}} {"block":>5} {"stage":<8} {"channels":>8} {"stride":>6}']
    for tap in taps:
        block = '' if tap.diffssl_index is None else str(tap.diffssl_index)
        lines.append(f'{tap.name:<{width}} {block:>5} {tap.stage:<8} {tap.channels:>8} {tap.stride:>6}')
    return '\n'.join(lines)


def resolve_taps(taps: Sequence[Tap], blocks: Sequence[Union[str, int]], model: str = 'model') -> List[Tap]:
    """Look up taps by submodule name or by diffssl block number.

    Args:
        taps (Sequence[Tap]): The model's taps, from its family's listing.
        blocks (Sequence[str | int]): Names such as ``'mid_block'`` or ``'up_blocks.1.attentions.1'``, or
            1-based diffssl block numbers such as ``24``.
        model (str): What the taps belong to, for the messages (``'U-Net'``). Defaults to ``'model'``.

    Returns:
        list[Tap]: The taps, in the order given.

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
                valid = f'{min(by_index)}..{max(by_index)}' if by_index else 'none (name the taps instead)'
                raise KeyError(f'diffssl block {block} does not exist in this {model}; valid blocks are {valid}')
            resolved.append(by_index[block])
        else:
            if block not in by_name:
                raise KeyError(f'{block!r} is not a tappable block of this {model}; valid names are: '
                               f'{", ".join(by_name)}')
            resolved.append(by_name[block])
    return resolved


def decoder_tap_at_stride(taps: Sequence[Tap], stride: int) -> Optional[Tap]:
    """The last decoder layer output at ``stride``: the final features the decoder computes at that scale.

    Only layer outputs (resnets and attentions) count, so a level is represented by its last layer before its
    upsampler. Returns None when the decoder has no layer at ``stride``.
    """
    candidates = [tap for tap in taps if tap.stage == 'decoder' and tap.kind == 'layer' and tap.stride == stride]
    return candidates[-1] if candidates else None
