"""Cross-attention maps of a latent U-Net's transformers: how much each pixel attends to each context token.

VPD (Zhao et al. 2023, ``vpd/models.py`` ``register_attention_control``) takes, from every cross-attention layer,
the softmax of ``Q K^T / sqrt(d)`` averaged over the heads: one map per context token (per class, for VPD's class
embeddings). diffusers computes those probabilities inside the attention processor and never returns them, so
:func:`transformer_with_maps` runs a ``Transformer2DModel`` through its own submodules, in the order of its
``forward`` and of ``BasicTransformerBlock.forward``, computing each cross-attention explicitly so that the maps
leave with the output, in the same call. It covers the layout of Stable Diffusion 1.x / 2.x (continuous input,
``norm_type='layer_norm'``, no positional embedding); :func:`check_map_support` names
what a U-Net has that it does not cover.
"""
from typing import List, Optional, Tuple

import torch
from diffusers.models.attention_processor import Attention
from torch import Tensor, nn


def cross_attention_map_name(prefix: str, block: int) -> str:
    """The tap name of the cross-attention map of block ``block`` of the transformer ``prefix``."""
    return f'{prefix}.transformer_blocks.{block}.attn2.map'


def cross_attention_map_names(transformer: nn.Module, prefix: str) -> List[str]:
    """The tap names of a ``Transformer2DModel``'s cross-attention maps: ``'{prefix}.transformer_blocks.b.attn2.map'``
    for each block ``b`` with a cross-attention (``attn2``)."""
    return [cross_attention_map_name(prefix, b) for b, block in enumerate(transformer.transformer_blocks)
            if block.attn2 is not None]


def check_map_support(transformer: nn.Module, name: str) -> None:
    """Raise a ``ValueError`` naming what :func:`transformer_with_maps` cannot restate in ``transformer``."""
    problems = []
    if not transformer.is_input_continuous:
        problems.append('its input is not a continuous feature map')
    for b, block in enumerate(transformer.transformer_blocks):
        if block.norm_type != 'layer_norm':
            problems.append(f"block {b} has norm_type={block.norm_type!r} (only 'layer_norm')")
        if block.pos_embed is not None or block.only_cross_attention:
            problems.append(f'block {b} has a positional embedding or only cross-attention')
        attention = block.attn2
        if attention is not None and (attention.norm_cross is not None or attention.group_norm is not None
                                      or attention.spatial_norm is not None):
            problems.append(f'block {b} normalises inside its cross-attention')
    if problems:
        raise ValueError(f'the cross-attention maps of {name!r} cannot be taken: ' + '; '.join(problems)
                         + ' (supported: the Stable Diffusion 1.x / 2.x transformer layout)')


def cross_attention_with_map(attention: Attention, hidden: Tensor, context: Tensor) -> Tuple[Tensor, Tensor]:
    """diffusers' ``AttnProcessor`` (the explicit softmax) on ``hidden`` ``(B, N, C)`` attending to ``context``
    ``(B, L, D)``, returning the output ``(B, N, C)`` and the probabilities averaged over heads ``(B, N, L)``."""
    query = attention.head_to_batch_dim(attention.to_q(hidden))
    key = attention.head_to_batch_dim(attention.to_k(context))
    value = attention.head_to_batch_dim(attention.to_v(context))
    probabilities = attention.get_attention_scores(query, key, None)  # (B * heads, N, L)
    output = attention.batch_to_head_dim(torch.bmm(probabilities, value))
    output = attention.to_out[1](attention.to_out[0](output))
    if attention.residual_connection:
        output = output + hidden
    output = output / attention.rescale_output_factor
    head_mean = probabilities.unflatten(0, (hidden.shape[0], attention.heads)).mean(1)
    return output, head_mean


def transformer_with_maps(transformer: nn.Module, hidden: Tensor,
                          context: Optional[Tensor]) -> Tuple[Tensor, List[Tensor]]:
    """A ``Transformer2DModel``'s output and the cross-attention map of each of its blocks.

    Args:
        transformer (nn.Module): A ``Transformer2DModel`` that :func:`check_map_support` accepts.
        hidden (Tensor): Its input ``(B, C, h, w)``.
        context (Tensor): The tokens it cross-attends to ``(B, L, D)``.

    Returns:
        tuple[Tensor, list[Tensor]]: The output ``(B, C, h, w)`` and, per block with a cross-attention, the map
        ``(B, L, h, w)``: softmax(Q K^T / sqrt(d)) of each pixel over the L tokens, averaged over the heads.
    """
    batch, _, height, width = hidden.shape
    residual = hidden
    tokens = transformer.norm(hidden)
    if not transformer.use_linear_projection:
        tokens = transformer.proj_in(tokens)
    inner = tokens.shape[1]
    tokens = tokens.permute(0, 2, 3, 1).reshape(batch, height * width, inner)
    if transformer.use_linear_projection:
        tokens = transformer.proj_in(tokens)
    maps = []
    for block in transformer.transformer_blocks:
        tokens = block.attn1(block.norm1(tokens)) + tokens
        if block.attn2 is not None:
            attended, head_mean = cross_attention_with_map(block.attn2, block.norm2(tokens), context)
            tokens = attended + tokens
            maps.append(head_mean.transpose(1, 2).reshape(batch, -1, height, width))
        tokens = block.ff(block.norm3(tokens)) + tokens
    if transformer.use_linear_projection:
        tokens = transformer.proj_out(tokens)
    tokens = tokens.reshape(batch, height, width, tokens.shape[-1]).permute(0, 3, 1, 2).contiguous()
    if not transformer.use_linear_projection:
        tokens = transformer.proj_out(tokens)
    return tokens + residual, maps
