"""diffssl's training mode: the model trains in eval mode from its first evaluation on."""
from typing import Optional

from mmengine.hooks import Hook

from mmdiff.registry import HOOKS, register_module

META_KEY = 'eval_mode_after_val'


@register_module(HOOKS)
class EvalModeAfterFirstValHook(Hook):
    """Train in eval mode from the first validation on, as the published DifFeed (diffssl) trains.

    diffssl's ``finetune.py`` calls ``model.train()`` once, before its epoch loop; its ``test()`` calls
    ``model.eval()`` and nothing switches back. After the first evaluation (epoch 7 of the published 28) the
    feedback adapters' BatchNorm layers therefore normalise with their running statistics, which stop moving, for the
    rest of training (dropout, where a head has any, is off too). mmengine's loop calls ``model.train()`` every
    epoch, so without this hook the adapters train with batch statistics throughout (mmdiff's lighter DifFeed
    configs keep that). Add it with ``custom_hooks = [dict(type='mmdiff.EvalModeAfterFirstValHook')]``; a resumed run
    continues in the mode it was in (the state travels in the checkpoint's ``meta``).
    """
    priority = 'LOW'

    def __init__(self) -> None:
        self.validated = False

    def after_val_epoch(self, runner, metrics: Optional[dict] = None) -> None:
        self.validated = True

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self.validated:  # after the loop's model.train() of this epoch
            runner.model.eval()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[META_KEY] = self.validated

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.validated = bool(checkpoint.get('meta', {}).get(META_KEY, False))
