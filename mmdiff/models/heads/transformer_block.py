"""The pre-norm transformer block of the diffssl heads (timm's ``Block`` without drop-path or layer scale)."""
import torch.nn.functional as F
from torch import Tensor, nn


class TokenAttention(nn.Module):
    """Multi-head self-attention: one ``qkv`` projection (bias optional), softmax(q k^T / sqrt(d)) v, ``proj``.

    Args:
        embed_dims (int): Token width D.
        num_heads (int): Heads; must divide ``embed_dims``.
        qkv_bias (bool): Bias of the ``qkv`` projection (``proj`` always has one).
        dropout (float): Dropout on the attention weights and after ``proj``.
    """

    def __init__(self, embed_dims: int, num_heads: int, qkv_bias: bool, dropout: float) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} is not divisible by num_heads={num_heads}')
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, tokens: Tensor) -> Tensor:
        """``(B, L, D)`` -> ``(B, L, D)``."""
        batch, length, width = tokens.shape
        qkv = self.qkv(tokens).reshape(batch, length, 3, self.num_heads, width // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, L, D / heads)
        attended = F.scaled_dot_product_attention(query, key, value,
                                                  dropout_p=self.dropout if self.training else 0.0)
        return self.proj_drop(self.proj(attended.transpose(1, 2).reshape(batch, length, width)))


class TransformerBlock(nn.Module):
    """``x + attn(norm1(x))``, then ``x + mlp(norm2(x))`` with a GELU MLP of width ``embed_dims * mlp_ratio``.

    The layers keep PyTorch's default initialisation, as the diffssl reference does.

    Args:
        embed_dims (int): Token width D.
        num_heads (int): Attention heads; must divide ``embed_dims``.
        mlp_ratio (float): MLP hidden width over D. Defaults to 4.
        qkv_bias (bool): Bias of the ``qkv`` projection. Defaults to True.
        dropout (float): Dropout in attention and MLP. Defaults to 0.
    """

    def __init__(self, embed_dims: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        hidden = int(embed_dims * mlp_ratio)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = TokenAttention(embed_dims, num_heads, qkv_bias, dropout)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = nn.Sequential(nn.Linear(embed_dims, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, embed_dims), nn.Dropout(dropout))

    def forward(self, tokens: Tensor) -> Tensor:
        """``(B, L, D)`` -> ``(B, L, D)``."""
        tokens = tokens + self.attn(self.norm1(tokens))
        return tokens + self.mlp(self.norm2(tokens))


def transformer_blocks(num_layers: int, embed_dims: int, num_heads: int, mlp_ratio: float, qkv_bias: bool,
                       dropout: float) -> nn.Sequential:
    """``num_layers`` :class:`TransformerBlock` s in sequence."""
    if num_layers < 1:
        raise ValueError(f'num_layers must be >= 1, got {num_layers}')
    return nn.Sequential(*(TransformerBlock(embed_dims, num_heads, mlp_ratio, qkv_bias, dropout)
                           for _ in range(num_layers)))
