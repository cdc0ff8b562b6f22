"""A built model's neck and heads must take the channels its backbone declares."""
from typing import List

from torch import nn

CONSUMERS = ('neck', 'decode_head', 'auxiliary_head')


def check_consumer_channels(model: nn.Module) -> None:
    """Refuse a model whose neck (or, without one, segmentation heads) expects other channels than its backbone
    declares.

    A mismatch fails only inside the first convolution after training starts; this names both lists before. The
    backbone must declare ``out_channels`` (mmdiff's backbones do, before any forward pass); a consumer's
    ``in_channels`` are matched output by output, through its ``in_index`` where it selects outputs (mmseg's heads).

    Args:
        model (nn.Module): A built detector, segmentor or classifier (unwrapped).

    Raises:
        ValueError: Naming the module, its ``in_channels`` and the backbone's channels.
    """
    declared = getattr(getattr(model, 'backbone', None), 'out_channels', None)
    if declared is None:
        return
    declared = list(declared)
    # with a neck (mmdet's FPN, VPD's FPN), the heads read the neck's outputs: only the neck reads the backbone
    for name in (('neck', ) if getattr(model, 'neck', None) is not None else CONSUMERS):
        consumers = getattr(model, name, None)
        for index, consumer in enumerate(consumers if isinstance(consumers, nn.ModuleList) else [consumers]):
            expected = getattr(consumer, 'in_channels', None)
            if expected is None:
                continue
            in_index = getattr(consumer, 'in_index', None)
            selected = _selected(declared, in_index)
            if _as_list(expected) != selected:
                where = f'model.{name}' + (f'[{index}]' if isinstance(consumers, nn.ModuleList) else '')
                selection = f' (in_index {in_index} reads {selected})' if in_index is not None else ''
                fix = selected if isinstance(expected, (list, tuple)) else selected[0]
                raise ValueError(f'{where}.in_channels is {expected}, but the backbone gives {declared}{selection}; '
                                 f'set {where}.in_channels to {fix}')


def _as_list(channels) -> List[int]:
    return list(channels) if isinstance(channels, (list, tuple)) else [channels]


def _selected(declared: List[int], in_index) -> List[int]:
    """The backbone channels a consumer reads: those ``in_index`` picks, else all of them."""
    if in_index is None:
        return declared
    indices = _as_list(in_index)
    if any(not -len(declared) <= index < len(declared) for index in indices):
        return declared  # an in_index outside the outputs fails with the consumer's own message
    return [declared[index] for index in indices]
