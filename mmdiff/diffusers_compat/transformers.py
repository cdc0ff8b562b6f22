"""The diffusers internals of the diffusion-transformer family (DiT, PixArt, SD3, FLUX, Sana): the embeddings each
model's forward runs before its blocks, the blocks called one by one as that forward calls them, the token layout,
and the AdaLN modulation a block's output gets from the norm after it (DiTF's modulated features)."""
from typing import List, Optional, Tuple

import diffusers
import torch
import torch.nn.functional as F
from diffusers import FluxTransformer2DModel
from torch import Tensor, nn

from .version import version_message

try:  # a release that moved these cannot be driven: say so with both versions, not with a bare ImportError
    from diffusers.models.attention import JointTransformerBlock
    from diffusers.models.transformers.transformer_flux import FluxSingleTransformerBlock, FluxTransformerBlock
except ImportError as error:
    raise ImportError(version_message(diffusers.__version__)) from error

# the diffusers attributes below the public surface that this module reads (a test keeps other modules off them;
# FLUX's single-stream ``norm`` is not listed: every tensor has a ``norm``)
TRANSFORMER_INTERNALS = frozenset({
    'transformer_blocks', 'single_transformer_blocks', 'pos_embed', 'x_embedder', 'time_text_embed',
    'context_embedder', 'adaln_single', 'caption_projection', 'use_additional_conditions', 'patch_embed',
    'time_embed', 'caption_norm', 'to_add_out', 'ff_context', 'norm2_context', 'norm1', 'norm_out',
    'proj_out_1', 'scale_shift_table', 'emb'
})
# the families whose blocks attend jointly to image and text tokens (and hand both on)
JOINT_TYPES = ('SD3Transformer2DModel', 'FluxTransformer2DModel')
# the families that modulate with a scale-shift table plus a (B, 6 x C) timestep projection (PixArt's AdaLN-single)
TABLE_TYPES = ('PixArtTransformer2DModel', 'SanaTransformer2DModel')


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
                          'caption_projection', 'patch_embed', 'time_embed', 'caption_norm')


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
    keyword arguments every block is called with; and the modulation the norm after a block applies.

    Args:
        model (nn.Module): A ``DiTTransformer2DModel``, ``PixArtTransformer2DModel``, ``SD3Transformer2DModel``,
            ``FluxTransformer2DModel`` or ``SanaTransformer2DModel``.
        sample (Tensor): The noised latents ``(B, C, h, w)``.
        timesteps (Tensor): Their steps ``(B,)`` in [0, T): DiT and PixArt take them as they are, SD3 ``t``,
            FLUX ``t / 1000`` (which it multiplies by 1000) and Sana ``t x timestep_scale``, as their pipelines pass
            them.
        context (Tensor, optional): Text tokens ``(B, L, D)`` (PixArt, SD3, FLUX, Sana).
        labels (Tensor, optional): Class labels ``(B,)`` (DiT; its null class is ``num_embeds_ada_norm``).
        pooled (Tensor, optional): The pooled text embedding ``(B, P)`` (SD3, FLUX).
        image_size (tuple[int, int], optional): The images' (H, W), for PixArt-alpha's resolution conditioning.
        guidance (float, optional): FLUX's distilled guidance scale, for a model with ``guidance_embeds``.
    """

    def __init__(self, model: nn.Module, sample: Tensor, timesteps: Tensor, context: Optional[Tensor] = None,
                 labels: Optional[Tensor] = None, pooled: Optional[Tensor] = None,
                 image_size: Optional[Tuple[int, int]] = None, guidance: Optional[float] = None) -> None:
        self.model = model
        self.kind = kind = type(model).__name__
        batch = sample.shape[0]
        self.joint = kind in JOINT_TYPES
        self.context = None
        self.embedded = None  # PixArt's and Sana's timestep embedding, which their output norm modulates with
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
        elif kind == 'SanaTransformer2DModel':
            self.tokens = model.patch_embed(sample)
            steps = timesteps.to(self.tokens.dtype) * model.config.timestep_scale
            modulation, self.embedded = model.time_embed(steps, batch_size=batch, hidden_dtype=self.tokens.dtype)
            text = model.caption_projection(context).view(batch, -1, self.tokens.shape[-1])
            self.kwargs = dict(encoder_hidden_states=model.caption_norm(text), timestep=modulation,
                               height=self.grid[0], width=self.grid[1])
        elif kind == 'SD3Transformer2DModel':
            self.tokens = model.pos_embed(sample)
            self.context = model.context_embedder(context)
            self.kwargs = dict(temb=model.time_text_embed(timesteps, pooled))
        elif kind == 'DiTTransformer2DModel':
            self.tokens = model.pos_embed(sample)
            self.kwargs = dict(timestep=timesteps, class_labels=labels)
        else:  # PixArt
            self.tokens = model.pos_embed(sample)
            added = dict(resolution=None, aspect_ratio=None)
            if model.use_additional_conditions:
                height, width = image_size
                added = dict(resolution=torch.tensor([[height, width]], device=sample.device).expand(batch, -1),
                             aspect_ratio=torch.tensor([[height / width]], device=sample.device).expand(batch, -1))
            modulation, self.embedded = model.adaln_single(timesteps, added, batch_size=batch,
                                                           hidden_dtype=self.tokens.dtype)
            text = model.caption_projection(context).view(batch, -1, self.tokens.shape[-1])
            self.kwargs = dict(encoder_hidden_states=text, timestep=modulation)

    def apply(self, block: nn.Module, tokens: Tensor, context: Optional[Tensor]) -> Tuple[Optional[Tensor], Tensor]:
        """One block on the image tokens (and, for the joint families, the text tokens), called as the model's
        forward calls it: the new ``(text tokens or None, image tokens)``."""
        if self.joint:
            return block(hidden_states=tokens, encoder_hidden_states=context, **self.kwargs)
        return None, block(tokens, **self.kwargs)

    def modulate(self, tokens: Tensor, next_block: Optional[nn.Module]) -> Tensor:
        """A block's output image tokens ``(B, N, C)`` as the norm after it hands them on: normalised, then scaled
        and shifted by the AdaLN modulation of the current step (and class), without the gate. The norm is
        ``next_block``'s first (FLUX's single-stream ``norm``), or the model's output norm after the last block
        (``next_block=None``). DiTF (Gan et al. 2025) shows these beat the raw block outputs as features."""
        if next_block is None:
            return self._output_norm(tokens)
        if self.kind in TABLE_TYPES:  # the block's table plus the step's projection: (shift, scale, gate, ...)
            table = next_block.scale_shift_table[None] + self.kwargs['timestep'].reshape(tokens.shape[0], 6, -1)
            shift, scale = table.chunk(6, dim=1)[:2]
            return next_block.norm1(tokens) * (1 + scale) + shift
        if self.kind == 'DiTTransformer2DModel':
            return next_block.norm1(tokens, self.kwargs['timestep'], self.kwargs['class_labels'],
                                    hidden_dtype=tokens.dtype)[0]
        return _first_norm(next_block)(tokens, emb=self.kwargs['temb'])[0]

    def _output_norm(self, tokens: Tensor) -> Tensor:
        """The model's last norm and modulation, before its output projection, as its forward applies them."""
        model = self.model
        if self.kind == 'DiTTransformer2DModel':
            conditioning = model.transformer_blocks[0].norm1.emb(self.kwargs['timestep'], self.kwargs['class_labels'],
                                                                 hidden_dtype=tokens.dtype)
            shift, scale = model.proj_out_1(F.silu(conditioning)).chunk(2, dim=1)
            return model.norm_out(tokens) * (1 + scale[:, None]) + shift[:, None]
        if self.kind == 'PixArtTransformer2DModel':
            shift, scale = (model.scale_shift_table[None] + self.embedded[:, None]).chunk(2, dim=1)
            return model.norm_out(tokens) * (1 + scale) + shift
        if self.kind == 'SanaTransformer2DModel':
            return model.norm_out(tokens, self.embedded, model.scale_shift_table)
        return model.norm_out(tokens, self.kwargs['temb'])


def _first_norm(block: nn.Module) -> nn.Module:
    """A block's first norm: FLUX's single-stream blocks call it ``norm``, the others ``norm1``."""
    return block.norm if isinstance(block, FluxSingleTransformerBlock) else block.norm1


def modulation_parameters(model: nn.Module, next_block: Optional[nn.Module]) -> List[nn.Parameter]:
    """The parameters :meth:`TokenState.modulate` uses for a block followed by ``next_block`` (None: the last)."""
    kind = type(model).__name__
    holder = model if next_block is None else next_block
    table = [holder.scale_shift_table] if kind in TABLE_TYPES else []
    if next_block is not None:
        modules = [_first_norm(next_block)]
    elif kind == 'DiTTransformer2DModel':
        modules = [model.transformer_blocks[0].norm1.emb, model.proj_out_1, model.norm_out]
    else:
        modules = [model.norm_out]
    return table + [p for module in modules for p in module.parameters()]
