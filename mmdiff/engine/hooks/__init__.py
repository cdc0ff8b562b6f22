from .diffusion_samples_hook import DiffusionSamplesHook
from .entropy_decay_hook import EntropyDecayHook
from .eval_mode_after_val_hook import EvalModeAfterFirstValHook
from .eval_progress_bar_hook import EvalProgressBarHook
from .non_finite_loss_hook import NonFiniteLossHook
from .random_state_hook import RandomStateHook
from .run_checks_hook import GUARD_HOOKS, RunChecksHook, with_guard_hooks

__all__ = [
    'DiffusionSamplesHook', 'EntropyDecayHook', 'EvalModeAfterFirstValHook', 'EvalProgressBarHook', 'NonFiniteLossHook',
    'RandomStateHook', 'RunChecksHook', 'GUARD_HOOKS', 'with_guard_hooks'
]
