"""Choosing between the EMA and the raw weights of an mmengine checkpoint."""
from typing import Dict, Mapping, Tuple

from torch import Tensor

from .choices import check_choice
from .safe_checkpoint import load_checkpoint_file

WEIGHT_KINDS = ('ema', 'raw')


def checkpoint_weights(checkpoint: dict, weights: str = 'ema', source: str = 'the checkpoint') -> Dict[str, Tensor]:
    """The model weights of a loaded checkpoint: its EMA weights or its raw (trained) ones.

    mmengine's ``EMAHook`` saves the averaged weights in ``state_dict`` and the raw ones in ``ema_state_dict``
    (as ``module.<key>``), so that deployment loads the EMA weights. A checkpoint without ``ema_state_dict`` has
    raw weights only, and both choices return them. A bare state dict is returned as it is.

    Args:
        checkpoint (dict): A loaded checkpoint (``torch.load`` output).
        weights (str): ``'ema'`` or ``'raw'``. Defaults to ``'ema'``.
        source (str): Where it was read from, for the message. Defaults to ``'the checkpoint'``.

    Returns:
        dict: Parameter name -> tensor.
    """
    check_choice('weights', weights, WEIGHT_KINDS)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f'{source} holds a {type(checkpoint).__name__}, not a state dict or an mmengine checkpoint '
                         f'(a dict with state_dict)')
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


def check_checkpoint_fits(own: Mapping[str, Tensor], checkpoint: str, target: str, exact: bool) -> None:
    """Check a checkpoint the runner is about to load non-strictly, before it does.

    Args:
        own (Mapping[str, Tensor]): The model's state dict.
        checkpoint (str): The checkpoint file (read memory-mapped, with the safe loader).
        target (str): What it is loaded into, for the message.
        exact (bool): Resuming: every weight must fit (:func:`check_weights_fit`). Otherwise (``load_from``, e.g.
            fine-tuning with a new head) at least one of the model's weights must be there with its shape.

    Raises:
        ValueError: When it does not fit, naming what is missing.
    """
    loaded = load_checkpoint_file(checkpoint, mmap=True)
    state = loaded.get('state_dict', loaded) if isinstance(loaded, dict) else loaded
    if not isinstance(state, Mapping):
        raise ValueError(f'checkpoint {checkpoint!r} holds a {type(state).__name__}, not a state dict')
    if exact:
        check_weights_fit(own, state, checkpoint, target)
        return
    fitting = [key for key, value in own.items() if key in state and state[key].shape == value.shape]
    if not fitting:
        raise ValueError(f'checkpoint {checkpoint!r} holds none of the {len(own)} weights of {target} with their '
                         f'shapes (its keys start {list(state)[:5]}); load_from would train random weights')
