from .eval_progress_bar_hook import EvalProgressBarHook

__all__ = ['EvalProgressBarHook']
