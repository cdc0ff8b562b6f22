"""Decay the timestep policy's entropy bonus to zero over training."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdiff.registry import HOOKS, register_module


@register_module(HOOKS)
class EntropyDecayHook(Hook):
    """Set the model's ``entropy_weight`` before each training iteration, falling linearly to zero.

    Early on, the bonus keeps the timestep policy exploring; by the end the policy is free to commit to the
    timesteps whose teacher features pay best. The weight at iteration ``i`` is
    ``start * max(0, 1 - i / decay_iters)``.

    Args:
        start (float): The weight at the first iteration. Defaults to the model's ``entropy_weight`` when training
            starts.
        decay_iters (int, optional): Iterations to reach zero. Defaults to the run's ``max_iters``.
    """
    priority = 'NORMAL'

    def __init__(self, start: Optional[float] = None, decay_iters: Optional[int] = None) -> None:
        if start is not None and start < 0:
            raise ValueError(f'start={start} must be >= 0')
        if decay_iters is not None and decay_iters < 1:
            raise ValueError(f'decay_iters={decay_iters} must be a positive number of iterations')
        self.start = start
        self.decay_iters = decay_iters

    @staticmethod
    def _model(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'entropy_weight'):
            raise TypeError(f'EntropyDecayHook needs a model with an entropy_weight (e.g. RepFusionDistiller), '
                            f'got {type(model).__name__}')
        return model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if self.start is None:
            self.start = float(model.entropy_weight)
        if self.decay_iters is None:
            self.decay_iters = runner.max_iters

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._model(runner).entropy_weight = self.start * max(0.0, 1.0 - runner.iter / self.decay_iters)
