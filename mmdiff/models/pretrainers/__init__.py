from .diffusion_pretrainer import DiffusionPretrainer

__all__ = ['DiffusionPretrainer']
