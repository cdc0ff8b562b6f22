"""A progress bar over the batches of every validation and test run."""
import sys
from typing import Optional

from mmengine.hooks import Hook
from mmengine.utils import ProgressBar

from mmdiff.registry import HOOKS, register_module


@register_module(HOOKS)
class EvalProgressBarHook(Hook):
    """Show a progress bar (done/total batches, rate, ETA) while the runner validates or tests.

    mmengine's logger reports training with an ETA but evaluation only every ``interval`` batches; this hook draws
    a bar on the main process. Add it with ``custom_hooks = [dict(type='mmdiff.EvalProgressBarHook')]``.
    """
    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._bar: Optional[ProgressBar] = None

    def _start(self, runner, dataloader) -> None:
        # the standard output of now (ProgressBar's default is the one of its import), so a redirection holds
        self._bar = ProgressBar(len(dataloader), file=sys.stdout) if runner.rank == 0 else None

    def _advance(self) -> None:
        if self._bar is not None:
            self._bar.update()

    def _finish(self) -> None:
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar = None

    def before_val_epoch(self, runner) -> None:
        self._start(runner, runner.val_dataloader)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._advance()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._finish()

    def before_test_epoch(self, runner) -> None:
        self._start(runner, runner.test_dataloader)

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._advance()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._finish()
