"""Stop training at the first non-finite loss, before anything is saved from the diverged state."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook

from mmdiff.registry import HOOKS, register_module


@register_module(HOOKS)
class NonFiniteLossHook(Hook):
    """Raise when a training iteration's loss is NaN or infinite.

    It runs before the EMA, logger and checkpoint hooks of the same iteration, so no checkpoint of the diverged
    weights is written: the work dir keeps only the checkpoints saved while the loss was finite. The message names
    the iteration, the loss and the learning rate. ``tools/train.py`` adds this hook to every run.
    """
    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'loss' not in outputs:
            return
        loss = outputs['loss']
        loss = float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
        if math.isfinite(loss):
            return
        learning_rates = {name: values[0] for name, values in runner.optim_wrapper.get_lr().items()}
        raise RuntimeError(
            f'training stopped at iteration {runner.iter + 1}: the loss is {loss} (learning rate {learning_rates}); '
            f'no checkpoint was written from this state. Lower the learning rate, add gradient clipping '
            f'(optim_wrapper.clip_grad) or check the data, then resume from the last good checkpoint.')
