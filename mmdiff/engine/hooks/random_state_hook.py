"""Save the random generators' states in every checkpoint and restore them on resume."""
import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from mmengine.hooks import Hook

from mmdiff.registry import HOOKS, register_module


def capture_random_state() -> Dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (CUDA's too where present), as tensors and
    plain Python values, so that a ``weights_only`` load can read them back."""
    numpy_state = np.random.get_state(legacy=False)
    state = dict(
        python=random.getstate(),
        numpy=dict(numpy_state, state=dict(numpy_state['state'], key=torch.from_numpy(
            numpy_state['state']['key'].astype(np.int64)))),
        torch=torch.get_rng_state())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: Dict[str, Any]) -> None:
    """Set the global generators to a state :func:`capture_random_state` returned."""
    random.setstate(state['python'])
    numpy_state = state['numpy']
    np.random.set_state(dict(numpy_state, state=dict(numpy_state['state'], key=numpy_state['state']['key'].numpy(
    ).astype(np.uint32))))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@register_module(HOOKS)
class RandomStateHook(Hook):
    """Make a resumed run continue with the random numbers the uninterrupted run would have drawn.

    mmengine's resume restores weights, optimizer, schedulers and the data order, but not the global generators,
    which drive the model's random choices (anchor and RoI sampling, drop-path, training noise). This hook writes
    their states into each checkpoint (``checkpoint['random_state']``) and, when training resumes from that
    checkpoint, restores them at the start of the resumed epoch, before the dataloader replays the skipped batches.
    A checkpoint loaded with ``load_from`` to start a new run is left alone (the run starts at iteration 0, not at
    the checkpoint's). Validation gets the generators back as it found them, so the state saved before it is the
    state training continues with (a validation dataloader alone draws a seed from torch's generator).

    The dataloader workers seed themselves, so with the pipeline in workers (``num_workers >= 1``, as the configs
    set) or without random transforms, a seeded, deterministic run killed and resumed ends with the same weights as
    one that never stopped. ``tools/train.py`` adds this hook to every run.
    """
    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: Optional[Dict[str, Any]] = None
        self._pending_iter: Optional[int] = None
        self._before_val: Optional[Dict[str, Any]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['random_state'] = capture_random_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'random_state' in checkpoint:
            self._pending = checkpoint['random_state']
            self._pending_iter = checkpoint.get('meta', {}).get('iter')

    def before_train_epoch(self, runner) -> None:
        if self._pending is not None and runner.iter == self._pending_iter:
            restore_random_state(self._pending)
        self._pending = self._pending_iter = None

    def before_val(self, runner) -> None:
        self._before_val = capture_random_state()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            restore_random_state(self._before_val)
            self._before_val = None
