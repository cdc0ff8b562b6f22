"""mmpretrain classification heads for frozen diffusion features.

This package imports mmpretrain; configs reach it with
``custom_imports=dict(imports=['mmdiff'], allow_failed_imports=False)`` (the registry imports them on first use).
"""
from .attention_head import AttentionHead
from .cnn_head import CNNHead
from .difformer_head import DifFormerHead
from .linear_probe_head import LinearProbeHead
from .mlp_head import MLPHead

__all__ = ['AttentionHead', 'CNNHead', 'DifFormerHead', 'LinearProbeHead', 'MLPHead']
