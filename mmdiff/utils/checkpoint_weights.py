"""Choosing between the EMA and the raw weights of an mmengine checkpoint."""
from typing import Dict

from torch import Tensor

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
    if weights not in WEIGHT_KINDS:
        raise ValueError(f'weights={weights!r} is not supported; choose one of {list(WEIGHT_KINDS)}')
    if 'state_dict' not in checkpoint:
        return checkpoint
    if weights == 'raw' and 'ema_state_dict' in checkpoint:
        return {key[len('module.'):]: value for key, value in checkpoint['ema_state_dict'].items()
                if key.startswith('module.')}
    return checkpoint['state_dict']
