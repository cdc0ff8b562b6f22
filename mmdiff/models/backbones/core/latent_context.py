"""The cross-attention context of a text-conditioned model, without a text model at run time."""
import os
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from mmdiff.utils.choices import check_choice

CONTEXT_TYPES = ('zero', 'file', 'learnable')
DEFAULT_NUM_TOKENS = 77  # a CLIP text encoder's sequence length, SD 1.x's context


def load_conditioning_file(path: str) -> Tuple[Tensor, Optional[Tensor]]:
    """The prompt embedding ``(tokens, dim)`` and, where the file has one, the pooled embedding ``(pooled_dim,)``.

    The file is ``torch.save``-d (read with ``weights_only=True``): a ``(L, D)`` or ``(1, L, D)`` tensor (e.g. an
    empty-prompt text embedding), or SDXL's ``dict(prompt_embeds=(1, L, D), pooled_prompt_embeds=(1, P))`` as
    ``tools/model_converters/make_prompt_embedding.py`` writes it.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'context file {path!r} does not exist; '
                                f'tools/model_converters/make_prompt_embedding.py writes one '
                                f'from a text encoder, or use context=dict(type=\'zero\')')
    saved = torch.load(path, map_location='cpu', weights_only=True)
    pooled = None
    if isinstance(saved, dict):
        if 'prompt_embeds' not in saved:
            raise ValueError(f'context file {path!r} holds a dict with {sorted(saved)}, not prompt_embeds (and '
                             f'pooled_prompt_embeds), as tools/model_converters/make_prompt_embedding.py writes them')
        saved, pooled = saved['prompt_embeds'], saved.get('pooled_prompt_embeds')
    return _as_matrix(saved, path, 'prompt embedding', '(tokens, dim)'), None if pooled is None else _as_vector(
        pooled, path)


def _as_matrix(tensor, path: str, what: str, expected: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise ValueError(f'context file {path!r} holds a {type(tensor).__name__}, not a tensor')
    if tensor.dim() == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 2:
        raise ValueError(f'context file {path!r} holds a {what} of shape {tuple(tensor.shape)}; expected '
                         f'{expected} or (1, {expected[1:]}')
    return tensor.float()


def _as_vector(tensor, path: str) -> Tensor:
    if not isinstance(tensor, Tensor) or tensor.dim() not in (1, 2) or tensor.dim() == 2 and tensor.shape[0] != 1:
        shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise ValueError(f'context file {path!r} holds a pooled_prompt_embeds of shape {shape}; expected '
                         f'(pooled_dim,) or (1, pooled_dim)')
    return tensor.reshape(-1).float()


class LatentContext(nn.Module):
    """Tokens a ``UNet2DConditionModel`` cross-attends to, shared by every image of a batch.

    Args:
        dim (int): The width of the tokens the model cross-attends to (a U-Net's ``cross_attention_dim``).
        type (str): ``'zero'``: ``num_tokens`` zero tokens; ``'file'``: a fixed tensor from ``path``
            (e.g. a precomputed empty-prompt embedding, ``(77, 768)`` for SD 1.5, or VPD's
            ``segmentation/class_embeddings.pth``, ``(150, 768)`` CLIP embeddings of the ADE20K classes);
            ``'learnable'``: trainable tokens, initialised from ``path`` when given and to zeros otherwise.
        path (str, optional): The ``torch.save``-d tensor for ``'file'`` and optionally ``'learnable'``.
        num_tokens (int, optional): Tokens of a ``'zero'`` or zero-initialised ``'learnable'`` context (default
            77); with ``path``, the count the file must hold (a config states it where channels depend on it,
            e.g. one cross-attention map channel per token). Defaults to None.
        adapter (bool): Add VPD's ``TextAdapter``: ``c + gamma * MLP(c)`` with the MLP Linear-GELU-Linear and a
            per-channel ``gamma``; the adapter and gamma train, also over fixed ``'file'`` tokens (VPD's setting).
            Defaults to False.
        adapter_hidden_channels (int, optional): Hidden width of the adapter's MLP. Defaults to None (``dim``,
            VPD's).
        adapter_gamma (float): The starting value of every ``gamma`` channel. Defaults to 1e-4 (VPD's).
        pooled_dim (int, optional): For SDXL's added conditioning, the width of the pooled text embedding that
            comes with the tokens: zeros for ``'zero'``, the file's ``pooled_prompt_embeds`` for ``'file'``, and
            trainable (from the file, else zeros) for ``'learnable'``. Defaults to None (none).
        described (str): What the model is called in messages (set by the backbone). Defaults to ``'U-Net'``.

    Example:
        >>> context = LatentContext(dim=32, type='learnable', num_tokens=4, adapter=True)
        >>> tuple(context(batch_size=2).shape), context.num_tokens
        ((2, 4, 32), 4)
    """

    def __init__(self, dim: int, type: str = 'zero', path: Optional[str] = None, num_tokens: Optional[int] = None,
                 adapter: bool = False, adapter_hidden_channels: Optional[int] = None,
                 adapter_gamma: float = 1e-4, pooled_dim: Optional[int] = None, described: str = 'U-Net') -> None:
        super().__init__()
        check_choice('context type', type, CONTEXT_TYPES)
        if type == 'file' and path is None:
            raise ValueError("context type 'file' needs path, a torch.save-d (tokens, dim) tensor")
        if type == 'zero' and path is not None:
            raise ValueError(f"context type 'zero' takes no path, got {path!r}; use type='file' to load it")
        if type == 'zero' and adapter:
            raise ValueError("adapter=True adapts the context tokens, but type='zero' has none to adapt; use "
                             "type='file' or 'learnable'")
        if num_tokens is not None and (isinstance(num_tokens, bool) or not isinstance(num_tokens, int)
                                       or num_tokens < 1):
            raise ValueError(f'num_tokens must be an integer >= 1, got {num_tokens!r}')
        if adapter_hidden_channels is not None and (not isinstance(adapter_hidden_channels, int)
                                                    or adapter_hidden_channels < 1):
            raise ValueError(f'adapter_hidden_channels must be an integer >= 1, got {adapter_hidden_channels!r}')
        pooled = None if pooled_dim is None else torch.zeros(pooled_dim)
        if path is None:
            tokens = torch.zeros(DEFAULT_NUM_TOKENS if num_tokens is None else num_tokens, dim)
        else:
            tokens, saved_pooled = load_conditioning_file(path)
            if pooled_dim is not None:
                pooled = _check_pooled(saved_pooled, pooled_dim, tokens, path, described)
            if num_tokens is not None and tokens.shape[0] != num_tokens:
                raise ValueError(f'the context {path!r} holds {tokens.shape[0]} tokens, but num_tokens={num_tokens}')
        if tokens.shape[1] != dim:
            raise ValueError(f'the context {path!r} has shape {tuple(tokens.shape)}, but the {described} cross-attends '
                             f'to {dim}-dimensional tokens')
        self.type = type
        if type == 'learnable':
            self.tokens = nn.Parameter(tokens)
            self.pooled = None if pooled is None else nn.Parameter(pooled)
        else:
            self.register_buffer('tokens', tokens, persistent=False)  # rebuilt from path or zeros
            self.register_buffer('pooled', pooled, persistent=False)
        hidden = dim if adapter_hidden_channels is None else adapter_hidden_channels
        self.adapter = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)) if adapter else None
        self.gamma = nn.Parameter(torch.full((dim, ), float(adapter_gamma))) if adapter else None

    @property
    def num_tokens(self) -> int:
        """Tokens per image."""
        return self.tokens.shape[0]

    def forward(self, batch_size: int) -> Tensor:
        """The context ``(batch_size, tokens, dim)``."""
        tokens = self.tokens
        if self.adapter is not None:
            tokens = tokens + self.gamma * self.adapter(tokens)
        return tokens.unsqueeze(0).expand(batch_size, -1, -1)

    def pooled_embedding(self, batch_size: int) -> Tensor:
        """SDXL's pooled text embedding ``(batch_size, pooled_dim)`` (a context built with ``pooled_dim``)."""
        return self.pooled.unsqueeze(0).expand(batch_size, -1)


def _check_pooled(pooled: Optional[Tensor], pooled_dim: int, tokens: Tensor, path: str, described: str) -> Tensor:
    """The file's pooled embedding, which SDXL's added conditioning and SD3's and FLUX's pooled projection need, of
    width ``pooled_dim``."""
    expected = (f'dict(prompt_embeds=(1, {tokens.shape[0]}, {tokens.shape[1]}), pooled_prompt_embeds=(1, '
                f'{pooled_dim}))')
    how = ('tools/model_converters/make_prompt_embedding.py PIPELINE_DIR OUT writes it from the pipeline folder '
           '(its text '
           'encoders and the pooled embedding), or use context=dict(type=\'zero\')')
    if pooled is None:
        raise ValueError(f'the {described} takes a pooled text embedding of width {pooled_dim} beside the prompt '
                         f'embedding (SDXL\'s added conditioning, SD3\'s and FLUX\'s pooled projection), but {path!r} '
                         f'holds the prompt embedding alone; expected {expected}: {how}')
    if pooled.shape[0] != pooled_dim:
        raise ValueError(f'{path!r} holds a pooled_prompt_embeds of width {pooled.shape[0]}, but the {described} takes '
                         f'{pooled_dim}; expected {expected}: {how}')
    return pooled
