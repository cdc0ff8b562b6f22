"""Runner extensions: hooks. Imported by the HOOKS registry's ``locations``; needs mmengine only."""
from .hooks import EvalProgressBarHook

__all__ = ['EvalProgressBarHook']
