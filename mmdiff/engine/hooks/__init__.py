from .diffusion_samples_hook import DiffusionSamplesHook
from .eval_progress_bar_hook import EvalProgressBarHook
from .non_finite_loss_hook import NonFiniteLossHook
from .random_state_hook import RandomStateHook

__all__ = ['DiffusionSamplesHook', 'EvalProgressBarHook', 'NonFiniteLossHook', 'RandomStateHook']
