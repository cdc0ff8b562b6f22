"""Decay the timestep policy's entropy bonus to zero over training."""
from typing import Optional

from mmengine.hooks import Hook

from mmdiff.registry import HOOKS, register_module
from mmdiff.utils.runner_access import unwrap_model


@register_module(HOOKS)
class EntropyDecayHook(Hook):
    """Set the model's ``entropy_weight``, falling linearly to zero, per iteration or per epoch.

    Early on, the bonus keeps the timestep policy exploring; by the end the policy is free to commit to the
    timesteps whose teacher features pay best. Per iteration (the default) the weight at iteration ``i`` is
    ``start * max(0, 1 - i / decay_iters)``, set before each iteration. With ``decay_epochs`` it is
    ``start * max(0, 1 - e / decay_epochs)`` for 0-based epoch ``e``, set before each epoch: RepFusion's
    ``EntropyDecayHook`` (``init_entropy_reg=0.1, end_epoch=100`` on CIFAR-10).

    Args:
        start (float): The weight at the start. Defaults to the model's ``entropy_weight`` when training starts.
        decay_iters (int, optional): Iterations to reach zero. Defaults to the run's ``max_iters``.
        decay_epochs (int, optional): Epochs to reach zero, instead of iterations. Defaults to None.
    """
    priority = 'NORMAL'

    def __init__(self, start: Optional[float] = None, decay_iters: Optional[int] = None,
                 decay_epochs: Optional[int] = None) -> None:
        if start is not None and start < 0:
            raise ValueError(f'start={start} must be >= 0')
        if decay_iters is not None and decay_iters < 1:
            raise ValueError(f'decay_iters={decay_iters} must be a positive number of iterations')
        if decay_epochs is not None and decay_epochs < 1:
            raise ValueError(f'decay_epochs={decay_epochs} must be a positive number of epochs')
        if decay_iters is not None and decay_epochs is not None:
            raise ValueError(f'give decay_iters ({decay_iters}) or decay_epochs ({decay_epochs}), not both')
        self.start = start
        self.decay_iters = decay_iters
        self.decay_epochs = decay_epochs

    @staticmethod
    def _model(runner):
        model = unwrap_model(runner.model)
        if not hasattr(model, 'entropy_weight'):
            raise TypeError(f'EntropyDecayHook needs a model with an entropy_weight (e.g. RepFusionDistiller), '
                            f'got {type(model).__name__}')
        return model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if self.start is None:
            self.start = float(model.entropy_weight)
        if self.decay_iters is None and self.decay_epochs is None:
            self.decay_iters = runner.max_iters

    def before_train_epoch(self, runner) -> None:
        if self.decay_epochs is not None:
            self._model(runner).entropy_weight = self.start * max(0.0, 1.0 - runner.epoch / self.decay_epochs)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self.decay_iters is not None:
            self._model(runner).entropy_weight = self.start * max(0.0, 1.0 - runner.iter / self.decay_iters)
