from .diffusion_samples_hook import DiffusionSamplesHook
from .eval_progress_bar_hook import EvalProgressBarHook
from .non_finite_loss_hook import NonFiniteLossHook

__all__ = ['DiffusionSamplesHook', 'EvalProgressBarHook', 'NonFiniteLossHook']
