"""The cross-attention context of a text-conditioned U-Net, without a text model at run time."""
import os
from typing import Optional

import torch
from torch import Tensor, nn

CONTEXT_TYPES = ('zero', 'file', 'learnable')


def load_context_tensor(path: str) -> Tensor:
    """A ``(L, D)`` or ``(1, L, D)`` tensor saved with ``torch.save`` (e.g. an empty-prompt text embedding)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'context file {path!r} does not exist; tools/make_prompt_embedding.py writes one '
                                f'from a text encoder, or use context=dict(type=\'zero\')')
    tensor = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(tensor, Tensor):
        raise ValueError(f'context file {path!r} holds a {type(tensor).__name__}, not a tensor')
    if tensor.dim() == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 2:
        raise ValueError(f'context file {path!r} holds a tensor of shape {tuple(tensor.shape)}; expected '
                         f'(tokens, dim) or (1, tokens, dim)')
    return tensor.float()


class LatentContext(nn.Module):
    """Tokens a ``UNet2DConditionModel`` cross-attends to, shared by every image of a batch.

    Args:
        dim (int): The U-Net's ``cross_attention_dim``.
        type (str): ``'zero'``: ``num_tokens`` zero tokens; ``'file'``: a fixed tensor from ``path``
            (e.g. a precomputed empty-prompt embedding, ``(77, 768)`` for SD 1.5); ``'learnable'``: trainable
            tokens, initialised from ``path`` when given (e.g. one prompt embedding per class, as VPD does) and
            to zeros otherwise.
        path (str, optional): The ``torch.save``-d tensor for ``'file'`` and optionally ``'learnable'``.
        num_tokens (int): Tokens of a ``'zero'`` or zero-initialised ``'learnable'`` context. Defaults to 77.
        adapter (bool): For ``'learnable'``: add VPD's residual text adapter, ``c + gamma * MLP(c)`` with
            ``gamma`` starting at 1e-4. Defaults to False.

    Example:
        >>> context = LatentContext(dim=32, type='learnable', num_tokens=4, adapter=True)
        >>> tuple(context(batch_size=2).shape)
        (2, 4, 32)
    """

    def __init__(self, dim: int, type: str = 'zero', path: Optional[str] = None, num_tokens: int = 77,
                 adapter: bool = False) -> None:
        super().__init__()
        if type not in CONTEXT_TYPES:
            raise ValueError(f'context type {type!r} is not supported; choose one of {list(CONTEXT_TYPES)}')
        if type == 'file' and path is None:
            raise ValueError("context type 'file' needs path, a torch.save-d (tokens, dim) tensor")
        if type == 'zero' and path is not None:
            raise ValueError(f"context type 'zero' takes no path, got {path!r}; use type='file' to load it")
        if adapter and type != 'learnable':
            raise ValueError(f"adapter=True trains a residual adapter, which needs type='learnable', got {type!r}")
        if num_tokens < 1:
            raise ValueError(f'num_tokens must be >= 1, got {num_tokens}')
        tokens = load_context_tensor(path) if path is not None else torch.zeros(num_tokens, dim)
        if tokens.shape[1] != dim:
            raise ValueError(f'the context {path!r} has shape {tuple(tokens.shape)}, but the U-Net cross-attends '
                             f'to {dim}-dimensional tokens (cross_attention_dim={dim})')
        self.type = type
        if type == 'learnable':
            self.tokens = nn.Parameter(tokens)
        else:
            self.register_buffer('tokens', tokens, persistent=False)  # rebuilt from path or zeros
        hidden = max(dim // 4, 1)
        self.adapter = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)) if adapter else None
        self.gamma = nn.Parameter(torch.full((dim, ), 1e-4)) if adapter else None

    def forward(self, batch_size: int) -> Tensor:
        """The context ``(batch_size, tokens, dim)``."""
        tokens = self.tokens
        if self.adapter is not None:
            tokens = tokens + self.gamma * self.adapter(tokens)
        return tokens.unsqueeze(0).expand(batch_size, -1, -1)
