"""Every use mmdiff makes of diffusers internals, in one place, with the diffusers versions it is tested on.

diffusers' public surface (model classes, ``from_pretrained``, ``load_config``, schedulers, ``forward``) is used
everywhere; this module alone reaches below it: the submodules of a ``ResnetBlock2D`` and an ``Attention`` called
one by one (to return a resnet's residual branch and a cross-attention's probabilities, which diffusers' forward
never returns), the U-Net's embedding layers (to run its pass up to a tap), the block classes of its layout, and
the classes diffusers does not export at the top level. These change between diffusers releases, so
:func:`check_diffusers_version` refuses a version outside :data:`TESTED_DIFFUSERS`, naming both, and ``pyproject.toml``
declares the same range. :data:`INTERNAL_ATTRIBUTES` lists the attributes read here; a test checks that no other
mmdiff module touches them.
"""
from typing import Dict, List, Optional, Tuple

import diffusers
import torch
from diffusers import FluxTransformer2DModel
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from torch import Tensor, nn

# the diffusers releases mmdiff is tested on; pyproject.toml declares the same range
TESTED_DIFFUSERS = '>=0.42.1,<0.43'


def _version_message(installed: str) -> str:
    return (f'diffusers {installed} is installed, but mmdiff reaches diffusers internals tested on '
            f'diffusers{TESTED_DIFFUSERS} only (pyproject.toml); install a release in that range, e.g. pip install '
            f'"diffusers{TESTED_DIFFUSERS}"')


try:  # a release that moved these cannot be driven: say so with both versions, not with a bare ImportError
    from diffusers.models.attention import JointTransformerBlock
    from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0
    from diffusers.models.autoencoders.vae import Encoder as VAEEncoderLayers
    from diffusers.models.resnet import ResnetBlock2D
    from diffusers.models.transformers.transformer_flux import FluxTransformerBlock
    from diffusers.utils.torch_utils import randn_tensor
except ImportError as error:
    raise ImportError(_version_message(diffusers.__version__)) from error

# every diffusers attribute below the public surface that this module reads (a test keeps the others off them)
INTERNAL_ATTRIBUTES = frozenset({
    'norm1', 'conv1', 'norm2', 'conv2', 'nonlinearity', 'time_emb_proj', 'skip_time_act', 'time_embedding_norm',
    'output_scale_factor', 'conv_shortcut', 'head_to_batch_dim', 'batch_to_head_dim', 'get_attention_scores',
    'to_q', 'to_k', 'to_v', 'to_out', 'residual_connection', 'rescale_output_factor', 'norm_cross', 'group_norm',
    'spatial_norm', 'use_linear_projection', 'is_input_continuous', 'proj_in', 'proj_out', 'transformer_blocks',
    'attn1', 'attn2', 'norm3', 'ff', 'norm_type', 'pos_embed', 'only_cross_attention', 'time_proj',
    'time_embedding', 'time_embed_act', 'class_embedding', 'add_time_proj', 'add_embedding', 'set_processor',
    'x_embedder', 'time_text_embed', 'context_embedder', 'adaln_single', 'caption_projection',
    'use_additional_conditions', 'single_transformer_blocks', 'to_add_out', 'ff_context', 'norm2_context'
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

__all__ = [
    'TESTED_DIFFUSERS', 'INTERNAL_ATTRIBUTES', 'DOWN_BLOCKS', 'UP_BLOCKS', 'MID_BLOCK_RESNETS',
    'ATTENTION_PROCESSORS', 'NUM_TIME_IDS', 'Attention', 'ResnetBlock2D', 'VAEEncoderLayers', 'randn_tensor',
    'check_diffusers_version', 'set_attention_processor', 'is_plain_attention', 'sdxl_conditions',
    'cross_attention_map_name', 'resnet_residual', 'resnet_from_residual', 'resnet_residual_modules',
    'time_embedding', 'embedding_modules', 'cross_attention_map_names', 'check_map_support', 'transformer_with_maps',
    'tokens_to_map', 'flux_packed', 'flux_image_ids', 'transformer_blocks', 'TokenState',
    'transformer_embedding_modules', 'text_output_modules', 'token_stride'
]


def check_diffusers_version(installed: Optional[str] = None) -> None:
    """Refuse a diffusers release outside :data:`TESTED_DIFFUSERS`, naming both.

    Args:
        installed (str, optional): The version to check. Defaults to None (the installed ``diffusers.__version__``).
    """
    installed = diffusers.__version__ if installed is None else installed
    if Version(installed) not in SpecifierSet(TESTED_DIFFUSERS):
        raise RuntimeError(_version_message(installed))


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


# ---------------------------------------------------------------------------------------- diffusion transformers
def tokens_to_map(tokens: Tensor, grid: Tuple[int, int]) -> Tensor:
    """Row-major image tokens ``(B, h * w, C)`` as a map ``(B, C, h, w)``."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], *grid)


def flux_packed(latents: Tensor) -> Tensor:
    """FLUX's 2x2-packed latents, as its pipeline's ``_pack_latents``: ``(B, C, h, w)`` -> ``(B, h/2 * w/2, 4C)``."""
    batch, channels, height, width = latents.shape
    packed = latents.view(batch, channels, height // 2, 2, width // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return packed.reshape(batch, (height // 2) * (width // 2), channels * 4)


def flux_image_ids(grid: Tuple[int, int], device: torch.device, dtype: torch.dtype) -> Tensor:
    """FLUX's image position ids ``(h * w, 3)``: ``[0, row, column]``, as its pipeline's
    ``_prepare_latent_image_ids`` makes them."""
    ids = torch.zeros(*grid, 3, device=device, dtype=dtype)
    ids[..., 1] = ids[..., 1] + torch.arange(grid[0], device=device, dtype=dtype)[:, None]
    ids[..., 2] = ids[..., 2] + torch.arange(grid[1], device=device, dtype=dtype)[None, :]
    return ids.reshape(grid[0] * grid[1], 3)


TRANSFORMER_EMBEDDINGS = ('pos_embed', 'x_embedder', 'time_text_embed', 'context_embedder', 'adaln_single',
                          'caption_projection')


def transformer_embedding_modules(model: nn.Module) -> List[nn.Module]:
    """The modules a transformer runs before its blocks (its output head is not among them)."""
    return [getattr(model, name) for name in TRANSFORMER_EMBEDDINGS if getattr(model, name, None) is not None]


def text_output_modules(block: nn.Module) -> List[nn.Module]:
    """The parts of a joint block (SD3, FLUX double-stream) that only make the text tokens of its output (none in a
    block that hands no text tokens on, such as SD3's last)."""
    if not isinstance(block, (JointTransformerBlock, FluxTransformerBlock)) or block.ff_context is None:
        return []
    return [block.norm2_context, block.ff_context, block.attn.to_add_out]


def token_stride(class_name: str, patch_size: int) -> int:
    """Model input pixels per token: the patch size, or FLUX's 2x2 packing."""
    return 2 if class_name == 'FluxTransformer2DModel' else patch_size


def transformer_blocks(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """A diffusion transformer's blocks in forward order, named by their module paths (FLUX: its double-stream
    ``transformer_blocks`` then its single-stream ``single_transformer_blocks``)."""
    blocks = [(f'transformer_blocks.{i}', block) for i, block in enumerate(model.transformer_blocks)]
    singles = model.single_transformer_blocks if isinstance(model, FluxTransformer2DModel) else []
    return blocks + [(f'single_transformer_blocks.{j}', block) for j, block in enumerate(singles)]


class TokenState:
    """The start of one transformer pass, as the model's forward makes it: the embedded image tokens
    (:attr:`tokens`, on the grid :attr:`grid`), the text tokens of the joint families (:attr:`context`) and the
    keyword arguments every block is called with.

    Args:
        model (nn.Module): A ``DiTTransformer2DModel``, ``PixArtTransformer2DModel``, ``SD3Transformer2DModel`` or
            ``FluxTransformer2DModel``.
        sample (Tensor): The noised latents ``(B, C, h, w)``.
        timesteps (Tensor): Their steps ``(B,)`` in [0, T): DiT and PixArt take them as they are, SD3 ``t`` and
            FLUX ``t / 1000`` (which it multiplies by 1000), as their pipelines pass sigma x 1000.
        context (Tensor, optional): Text tokens ``(B, L, D)`` (PixArt, SD3, FLUX).
        labels (Tensor, optional): Class labels ``(B,)`` (DiT; its null class is ``num_embeds_ada_norm``).
        pooled (Tensor, optional): The pooled text embedding ``(B, P)`` (SD3, FLUX).
        image_size (tuple[int, int], optional): The images' (H, W), for PixArt-alpha's resolution conditioning.
        guidance (float, optional): FLUX's distilled guidance scale, for a model with ``guidance_embeds``.
    """

    def __init__(self, model: nn.Module, sample: Tensor, timesteps: Tensor, context: Optional[Tensor] = None,
                 labels: Optional[Tensor] = None, pooled: Optional[Tensor] = None,
                 image_size: Optional[Tuple[int, int]] = None, guidance: Optional[float] = None) -> None:
        kind = type(model).__name__
        batch = sample.shape[0]
        self.joint = kind in ('SD3Transformer2DModel', 'FluxTransformer2DModel')
        self.context = None
        stride = token_stride(kind, model.config.patch_size)
        self.grid = (sample.shape[2] // stride, sample.shape[3] // stride)
        if kind == 'FluxTransformer2DModel':
            self.tokens = model.x_embedder(flux_packed(sample))
            dtype = self.tokens.dtype
            steps = (timesteps.to(dtype) / 1000) * 1000  # the pipeline passes t / 1000, the model multiplies back
            embed = (model.time_text_embed(steps, pooled) if guidance is None else model.time_text_embed(
                steps, torch.full((batch, ), guidance, device=sample.device).to(dtype) * 1000, pooled))
            self.context = model.context_embedder(context)
            ids = torch.cat([torch.zeros(context.shape[1], 3, device=sample.device, dtype=dtype),
                             flux_image_ids(self.grid, sample.device, dtype)])
            self.kwargs = dict(temb=embed, image_rotary_emb=model.pos_embed(ids))
            return
        self.tokens = model.pos_embed(sample)
        if kind == 'DiTTransformer2DModel':
            self.kwargs = dict(timestep=timesteps, class_labels=labels)
        elif kind == 'PixArtTransformer2DModel':
            added = dict(resolution=None, aspect_ratio=None)
            if model.use_additional_conditions:
                height, width = image_size
                added = dict(resolution=torch.tensor([[height, width]], device=sample.device).expand(batch, -1),
                             aspect_ratio=torch.tensor([[height / width]], device=sample.device).expand(batch, -1))
            modulation, _ = model.adaln_single(timesteps, added, batch_size=batch, hidden_dtype=self.tokens.dtype)
            text = model.caption_projection(context).view(batch, -1, self.tokens.shape[-1])
            self.kwargs = dict(encoder_hidden_states=text, timestep=modulation)
        else:  # SD3
            self.context = model.context_embedder(context)
            self.kwargs = dict(temb=model.time_text_embed(timesteps, pooled))

    def apply(self, block: nn.Module, tokens: Tensor, context: Optional[Tensor]) -> Tuple[Optional[Tensor], Tensor]:
        """One block on the image tokens (and, for the joint families, the text tokens), called as the model's
        forward calls it: the new ``(text tokens or None, image tokens)``."""
        if self.joint:
            return block(hidden_states=tokens, encoder_hidden_states=context, **self.kwargs)
        return None, block(tokens, **self.kwargs)
