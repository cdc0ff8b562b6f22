"""The tappable outputs of a diffusion transformer: the image tokens of each block, as a map.

Every block of the transformer is a tap named by its module path (``'transformer_blocks.11'``; FLUX's single-stream
blocks ``'single_transformer_blocks.j'`` follow its double-stream ones) and numbered by its position among all
blocks (0-based; negative numbers count from the end, as timm's ``feature_take_indices``). The text tokens of the
joint-attention families are dropped; the image tokens are laid out as a map at the token stride: the patch size
(FLUX: its 2x2 packing) times the VAE's latent stride, 16 image pixels for the published models.
"""
from typing import List, Mapping, Optional

from mmdiff.diffusers_compat import token_stride
from ..core.taps import Tap

TRANSFORMER_STAGE = 'transformer'


def block_names(class_name: str, config: Mapping) -> List[str]:
    """The blocks' module paths in forward order."""
    names = [f'transformer_blocks.{i}' for i in range(config['num_layers'])]
    if class_name == 'FluxTransformer2DModel':
        names += [f'single_transformer_blocks.{j}' for j in range(config['num_single_layers'])]
    return names


def list_transformer_taps(class_name: str, config: Mapping, input_stride: int = 1,
                          context_tokens: Optional[int] = None) -> List[Tap]:
    """Enumerate a diffusion transformer's taps from its config alone, in forward order.

    Args:
        class_name (str): The diffusers class, e.g. ``'SD3Transformer2DModel'``.
        config (Mapping): Its keyword arguments, defaults included.
        input_stride (int): Image pixels per latent pixel (the VAE's stride). Defaults to 1.
        context_tokens (int, optional): Unused: transformers give no cross-attention map taps.

    Returns:
        list[Tap]: One per block, with its width, stride and block number.
    """
    width = config['num_attention_heads'] * config['attention_head_dim']
    stride = input_stride * token_stride(class_name, config['patch_size'])
    return [Tap(name, width, stride, TRANSFORMER_STAGE, 'layer', index + 1, block_index=index)
            for index, name in enumerate(block_names(class_name, config))]
