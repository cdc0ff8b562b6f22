"""Choosing between the EMA and the raw weights of an mmengine checkpoint."""
from typing import Dict, Mapping, Tuple

from torch import Tensor

from .choices import check_choice

WEIGHT_KINDS = ('ema', 'raw')


def checkpoint_weights(checkpoint: dict, weights: str = 'ema') -> Dict[str, Tensor]:
    """The model weights of a loaded checkpoint: its EMA weights or its raw (trained) ones.

    mmengine's ``EMAHook`` saves the averaged weights in ``state_dict`` and the raw ones in ``ema_state_dict``
    (as ``module.<key>``), so that deployment loads the EMA weights. A checkpoint without ``ema_state_dict`` has
    raw weights only, and both choices return them. A bare state dict is returned as it is.

    Args:
        checkpoint (dict): A loaded checkpoint (``torch.load`` output).
        weights (str): ``'ema'`` or ``'raw'``. Defaults to ``'ema'``.

    Returns:
        dict: Parameter name -> tensor.
    """
    check_choice('weights', weights, WEIGHT_KINDS)
    if 'state_dict' not in checkpoint:
        return checkpoint
    if weights == 'raw' and 'ema_state_dict' in checkpoint:
        return {key[len('module.'):]: value for key, value in checkpoint['ema_state_dict'].items()
                if key.startswith('module.')}
    return checkpoint['state_dict']


def check_weights_fit(own: Mapping[str, Tensor], state: Mapping[str, Tensor], checkpoint: str, target: str,
                      may_miss: Tuple[str, ...] = ()) -> None:
    """Raise unless ``state`` has every weight of ``own``, with its shape, and nothing else.

    Args:
        own (Mapping[str, Tensor]): The model's state dict.
        state (Mapping[str, Tensor]): The checkpoint's weights.
        checkpoint (str): The checkpoint's path, for the message.
        target (str): What the weights are for, for the message (e.g. ``'this backbone'``).
        may_miss (tuple[str]): Prefixes of model keys the checkpoint may lack (new layers). Defaults to ().

    Raises:
        ValueError: Naming how many keys are missing, unexpected or misshaped, with the first few of each.
    """
    missing = sorted(key for key in own.keys() - state.keys() if not key.startswith(may_miss))
    unexpected = sorted(state.keys() - own.keys())
    mismatched = [f'{key}: checkpoint {tuple(state[key].shape)} vs model {tuple(own[key].shape)}'
                  for key in sorted(own.keys() & state.keys()) if state[key].shape != own[key].shape]
    if missing or unexpected or mismatched:
        raise ValueError(
            f'checkpoint {checkpoint!r} does not fit {target}: {len(missing)} missing keys {missing[:5]}, '
            f'{len(unexpected)} unexpected keys {unexpected[:5]}, {len(mismatched)} shape mismatches '
            f'{mismatched[:5]}; was it saved for another arch?')
