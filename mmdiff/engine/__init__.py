"""Runner extensions: hooks. Imported by the HOOKS registry's ``locations``; needs mmengine only."""
from .hooks import DiffusionSamplesHook, EvalProgressBarHook

__all__ = ['DiffusionSamplesHook', 'EvalProgressBarHook']
