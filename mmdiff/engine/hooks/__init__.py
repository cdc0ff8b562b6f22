from .diffusion_samples_hook import DiffusionSamplesHook
from .eval_progress_bar_hook import EvalProgressBarHook

__all__ = ['DiffusionSamplesHook', 'EvalProgressBarHook']
