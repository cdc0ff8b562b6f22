"""The diffusion-transformer family: presets, taps (a block each) and the pass to them."""
from .builder import TRANSFORMER_TYPES, resolve_transformer
from .family import TransformerFamily
from .presets import TRANSFORMER_COMPANIONS, TRANSFORMER_PRESETS
from .taps import list_transformer_taps
from .transformer_pass import TransformerPass

__all__ = ['TRANSFORMER_TYPES', 'resolve_transformer', 'TransformerFamily', 'TRANSFORMER_PRESETS',
           'TRANSFORMER_COMPANIONS', 'list_transformer_taps', 'TransformerPass']
