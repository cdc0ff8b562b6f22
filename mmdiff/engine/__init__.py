"""Runner extensions: hooks. Imported by the HOOKS registry's ``locations``."""
from .hooks import DiffusionSamplesHook, EvalProgressBarHook, NonFiniteLossHook

__all__ = ['DiffusionSamplesHook', 'EvalProgressBarHook', 'NonFiniteLossHook']
