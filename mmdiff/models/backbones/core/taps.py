"""A tap: one named output of a denoising network that a backbone can return, whatever the model family.

A family lists its taps from the model's configuration alone, in forward order (for a U-Net:
:func:`~mmdiff.models.backbones.unet.taps.list_config_taps`); the core selects them by name, by block number
(:func:`resolve_taps`) or by stride (:func:`final_tap_at_stride`), and prints them (:func:`format_taps`).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Union


@dataclass(frozen=True)
class Tap:
    """One tappable submodule output of a denoising network.

    Args:
        name (str): Submodule path inside the model, e.g. ``'up_blocks.1.attentions.1'``.
        channels (int): Channels of the output.
        stride (int): Image pixels per output pixel (the reduction).
        stage (str): ``'encoder'``, ``'middle'`` or ``'decoder'`` (U-Nets), ``'transformer'`` (transformers).
        kind (str): ``'stem'`` (the input convolution), ``'layer'`` (a resnet, attention or transformer block),
            ``'residual'`` (a resnet's ``conv2``, before its shortcut is added), ``'attention_map'`` (a
            cross-attention's probabilities averaged over heads), ``'resample'`` (a down- or upsampler),
            ``'middle'`` or ``'block'`` (a whole down or up block).
        depth (int): How many top-level blocks must run to produce it (0 for the stem).
        diffssl_index (int, optional): For U-Nets, the guided-diffusion block number of this output, if it is one.
        block_index (int, optional): For transformers, the block's position among all blocks (0-based).
    """
    name: str
    channels: int
    stride: int
    stage: str
    kind: str
    depth: int
    diffssl_index: Optional[int] = None
    block_index: Optional[int] = None


def format_taps(taps: Sequence[Tap]) -> str:
    """A table of taps (name, diffssl block, stage, channels, stride), one line each."""
    width = max([34] + [len(tap.name) for tap in taps])
    lines = [f'{"tap":<{width}} {"block":>5} {"stage":<8} {"channels":>8} {"stride":>6}']
    for tap in taps:
        number = tap.diffssl_index if tap.diffssl_index is not None else tap.block_index
        block = '' if number is None else str(number)
        lines.append(f'{tap.name:<{width}} {block:>5} {tap.stage:<8} {tap.channels:>8} {tap.stride:>6}')
    return '\n'.join(lines)


def _numbered(taps: Sequence[Tap]) -> Dict[int, Tap]:
    """Taps by number: U-Nets' diffssl numbers (1-based), or transformers' block numbers (0-based, and negative
    from the end as timm's ``feature_take_indices``)."""
    by_index = {tap.diffssl_index: tap for tap in taps if tap.diffssl_index is not None}
    if by_index:
        return by_index
    blocks = [tap for tap in taps if tap.block_index is not None]
    return {index: tap for tap in blocks for index in (tap.block_index, tap.block_index - len(blocks))}


def _valid_numbers(numbered: Dict[int, Tap]) -> str:
    if not numbered:
        return 'none (name the taps instead)'
    low, high = min(numbered), max(numbered)
    return f'{low}..{high}' if low >= 0 else f'0..{high} or {low}..-1'


def resolve_taps(taps: Sequence[Tap], blocks: Sequence[Union[str, int]], model: str = 'model') -> List[Tap]:
    """Look up taps by submodule name or by block number (diffssl's for U-Nets, 0-based for transformers).

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
    by_index = _numbered(taps)
    resolved = []
    for block in blocks:
        if isinstance(block, bool) or not isinstance(block, (str, int)):
            raise TypeError(f'out_blocks entries are submodule names (str) or block numbers (int), '
                            f'got {block!r} of type {type(block).__name__}')
        if isinstance(block, int):
            if block not in by_index:
                kind = 'diffssl block' if any(tap.diffssl_index is not None for tap in taps) else 'block'
                raise KeyError(f'{kind} {block} does not exist in this {model}; valid blocks are '
                               f'{_valid_numbers(by_index)}')
            resolved.append(by_index[block])
        else:
            if block not in by_name:
                raise KeyError(f'{block!r} is not a tappable block of this {model}; valid names are: '
                               f'{", ".join(by_name)}')
            resolved.append(by_name[block])
    return resolved


def final_stage(taps: Sequence[Tap]) -> str:
    """The stage that computes the model's last features: a U-Net's ``'decoder'``, a transformer's blocks."""
    return taps[-1].stage


def final_tap_at_stride(taps: Sequence[Tap], stride: int) -> Optional[Tap]:
    """The last layer output of the :func:`final_stage` at ``stride``: the final features the model computes at
    that scale (for a U-Net, its decoder's).

    Only layer outputs (resnets, attentions, transformer blocks) count, so a U-Net level is represented by its last
    layer before its upsampler. Returns None when the final stage has no layer at ``stride``.
    """
    stage = final_stage(taps)
    candidates = [tap for tap in taps if tap.stage == stage and tap.kind == 'layer' and tap.stride == stride]
    return candidates[-1] if candidates else None
