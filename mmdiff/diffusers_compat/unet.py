"""The diffusers internals of the U-Net family: a resnet's residual branch, a cross-attention's probabilities (VPD's
maps), the time embedding and the block tables of the layouts, called one by one where diffusers' forward returns
none of them."""
from typing import Dict, List, Optional, Tuple

import diffusers
import torch
from torch import Tensor, nn

from .version import version_message

try:  # a release that moved these cannot be driven: say so with both versions, not with a bare ImportError
    from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0
    from diffusers.models.resnet import ResnetBlock2D
    from diffusers.utils.torch_utils import randn_tensor
except ImportError as error:
    raise ImportError(version_message(diffusers.__version__)) from error

# the diffusers attributes below the public surface that this module reads (a test keeps other modules off them)
UNET_INTERNALS = frozenset({
    'norm1', 'conv1', 'norm2', 'conv2', 'nonlinearity', 'time_emb_proj', 'skip_time_act', 'time_embedding_norm',
    'output_scale_factor', 'conv_shortcut', 'head_to_batch_dim', 'batch_to_head_dim', 'get_attention_scores',
    'to_q', 'to_k', 'to_v', 'to_out', 'residual_connection', 'rescale_output_factor', 'norm_cross', 'group_norm',
    'spatial_norm', 'use_linear_projection', 'is_input_continuous', 'proj_in', 'proj_out', 'transformer_blocks',
    'attn1', 'attn2', 'norm3', 'ff', 'norm_type', 'pos_embed', 'only_cross_attention', 'time_proj',
    'time_embedding', 'time_embed_act', 'class_embedding', 'add_time_proj', 'add_embedding', 'set_processor'
})

# what a U-Net block holds beside its resnets, one per layer: None, 'attention' (a diffusers Attention: self- or
# simple cross-attention, no maps) or 'transformer' (a Transformer2DModel, whose cross-attentions give maps)
DOWN_BLOCKS = {'DownBlock2D': None, 'ResnetDownsampleBlock2D': None, 'AttnDownBlock2D': 'attention',
               'SimpleCrossAttnDownBlock2D': 'attention', 'CrossAttnDownBlock2D': 'transformer'}
UP_BLOCKS = {'UpBlock2D': None, 'ResnetUpsampleBlock2D': None, 'AttnUpBlock2D': 'attention',
             'SimpleCrossAttnUpBlock2D': 'attention', 'CrossAttnUpBlock2D': 'transformer'}
# the resnets of a UNet2DConditionModel's middle block (a UNet2DModel's always has two); only the
# UNetMidBlock2DCrossAttn's attention is a transformer
MID_BLOCK_RESNETS = {'UNetMidBlock2D': 1, 'UNetMidBlock2DSimpleCrossAttn': 2, 'UNetMidBlock2DCrossAttn': 2}
ATTENTION_PROCESSORS = {'sdpa': AttnProcessor2_0, 'math': AttnProcessor}
# SDXL's added time ids: original (h, w), crop (top, left), target (h, w)
NUM_TIME_IDS = 6


def set_attention_processor(model: nn.Module, attention: str) -> None:
    """Give every plain attention of ``model`` the processor ``attention`` names: ``'sdpa'`` (PyTorch's fused
    ``scaled_dot_product_attention``) or ``'math'`` (diffusers' explicit softmax(QK^T)V). An attention with a
    processor of its own (SD3's joint attention, FLUX's) keeps it: it computes with the fused kernel."""
    plain = tuple(ATTENTION_PROCESSORS.values())
    for module in model.modules():
        if isinstance(module, Attention) and isinstance(module.processor, plain):
            module.set_processor(ATTENTION_PROCESSORS[attention]())


def is_plain_attention(module: nn.Module) -> bool:
    """A diffusers ``Attention`` (called on the hidden state alone), rather than a ``Transformer2DModel``."""
    return isinstance(module, Attention)

# ------------------------------------------------------------------------------------------------------ resnets
def resnet_residual(resnet: ResnetBlock2D, hidden: Tensor, emb: Tensor) -> Tensor:
    """The residual branch of a diffusers ``ResnetBlock2D`` (its ``conv2`` output, before the shortcut is added),
    computed with the resnet's own modules in the order of its ``forward``.

    Args:
        resnet (ResnetBlock2D): A resnet without up- or downsampling.
        hidden (Tensor): Its input ``(B, C_in, h, w)``.
        emb (Tensor): The time embedding ``(B, D)``.
    """
    h = resnet.conv1(resnet.nonlinearity(resnet.norm1(hidden)))
    temb = None
    if resnet.time_emb_proj is not None:
        temb = resnet.time_emb_proj(emb if resnet.skip_time_act else resnet.nonlinearity(emb))[:, :, None, None]
    if resnet.time_embedding_norm == 'scale_shift':
        scale, shift = torch.chunk(temb, 2, dim=1)
        h = resnet.norm2(h) * (1 + scale) + shift
    else:
        h = resnet.norm2(h if temb is None else h + temb)
    return resnet.conv2(resnet.dropout(resnet.nonlinearity(h)))


def resnet_from_residual(resnet: ResnetBlock2D, hidden: Tensor, residual: Tensor) -> Tensor:
    """The resnet's output given its input and its residual branch: ``(shortcut(hidden) + residual) / scale``."""
    shortcut = hidden if resnet.conv_shortcut is None else resnet.conv_shortcut(hidden)
    return (shortcut + residual) / resnet.output_scale_factor


def resnet_residual_modules(resnet: ResnetBlock2D) -> List[nn.Module]:
    """The modules :func:`resnet_residual` calls (not the shortcut): only they get a gradient from it."""
    return [m for m in (resnet.norm1, resnet.conv1, resnet.time_emb_proj, resnet.norm2, resnet.conv2) if m is not None]


# --------------------------------------------------------------------------------------------- time embedding
def time_embedding(unet: nn.Module, timesteps: Tensor, labels: Optional[Tensor], dtype: torch.dtype,
                   pooled: Optional[Tensor] = None, image_size: Optional[Tuple[int, int]] = None) -> Tensor:
    """A U-Net's time embedding ``(B, D)`` of ``timesteps`` ``(B,)``, plus its class embedding of ``labels`` and,
    for SDXL (``addition_embed_type='text_time'``), its embedding of the pooled text embedding ``(B, P)`` and the
    time ids made from ``image_size`` (:func:`sdxl_conditions`), in the order of diffusers' forward."""
    emb = unet.time_embedding(unet.time_proj(timesteps).to(dtype))
    if unet.class_embedding is not None:
        emb = emb + unet.class_embedding(labels).to(emb.dtype)
    if getattr(unet, 'add_embedding', None) is not None:
        added = sdxl_conditions(pooled, image_size)
        text_embeds, time_ids = added['text_embeds'], added['time_ids']
        time_embeds = unet.add_time_proj(time_ids.flatten()).reshape(text_embeds.shape[0], -1)
        emb = emb + unet.add_embedding(torch.concat([text_embeds, time_embeds], dim=-1).to(emb.dtype))
    if getattr(unet, 'time_embed_act', None) is not None:
        emb = unet.time_embed_act(emb)
    return emb


def sdxl_conditions(pooled: Optional[Tensor], image_size: Optional[Tuple[int, int]]) -> Dict[str, Tensor]:
    """SDXL's ``added_cond_kwargs`` as its pipeline makes them by default: the pooled text embedding ``(B, P)`` and
    the time ids ``(B, 6)``: original size, crop (0, 0) and target size, all the images' (H, W)."""
    if pooled is None or image_size is None:
        raise ValueError(f'a U-Net with SDXL\'s added conditioning needs both the pooled text embedding (pooled) and '
                         f'the image size its time ids are made of (image_size), got pooled='
                         f'{None if pooled is None else tuple(pooled.shape)} and image_size={image_size}')
    height, width = image_size
    time_ids = torch.tensor([[height, width, 0, 0, height, width]], dtype=torch.float32, device=pooled.device)
    return dict(text_embeds=pooled, time_ids=time_ids.expand(pooled.shape[0], NUM_TIME_IDS))


def embedding_modules(unet: nn.Module) -> List[nn.Module]:
    """The modules :func:`time_embedding` calls."""
    modules = (unet.time_embedding, getattr(unet, 'time_embed_act', None), unet.class_embedding,
               getattr(unet, 'add_embedding', None))
    return [module for module in modules if module is not None]


# ----------------------------------------------------------------------------------- cross-attention maps (VPD)
def cross_attention_map_name(prefix: str, block: int) -> str:
    """The tap name of the cross-attention map of block ``block`` of the transformer ``prefix``."""
    return f'{prefix}.transformer_blocks.{block}.attn2.map'


def cross_attention_map_names(transformer: nn.Module, prefix: str) -> List[str]:
    """The tap names of a ``Transformer2DModel``'s cross-attention maps: ``'{prefix}.transformer_blocks.b.attn2.map'``
    for each block ``b`` with a cross-attention (``attn2``); none for a plain ``Attention``."""
    if is_plain_attention(transformer):
        return []
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
                         + ' (supported: the Stable Diffusion 1.x / 2.x / XL transformer layout)')


def _cross_attention_with_map(attention: Attention, hidden: Tensor, context: Tensor) -> Tuple[Tensor, Tensor]:
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

    VPD (Zhao et al. 2023, ``vpd/models.py`` ``register_attention_control``) takes, from every cross-attention
    layer, the softmax of ``Q K^T / sqrt(d)`` averaged over the heads: one map per context token. diffusers
    computes those probabilities inside the attention processor and never returns them, so the transformer runs
    here through its own submodules, in the order of its ``forward`` and of ``BasicTransformerBlock.forward``.

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
            attended, head_mean = _cross_attention_with_map(block.attn2, block.norm2(tokens), context)
            tokens = attended + tokens
            maps.append(head_mean.transpose(1, 2).reshape(batch, -1, height, width))
        tokens = block.ff(block.norm3(tokens)) + tokens
    if transformer.use_linear_projection:
        tokens = transformer.proj_out(tokens)
    tokens = tokens.reshape(batch, height, width, tokens.shape[-1]).permute(0, 3, 1, 2).contiguous()
    if not transformer.use_linear_projection:
        tokens = transformer.proj_out(tokens)
    return tokens + residual, maps
