"""A re-statement of the diffssl papers' heads and feedback pass (github soumik-kanad/diffssl @ cc2ac30), for
equality tests only.

Written from ``ssl_diff/attention_head.py`` (``Block``, ``Attention``, ``Mlp`` and the layer string
``Use_CLS_Token:True:1024,Insert_CLS_Token,Attention:1024:8:4:2,Extract_CLS_Token``), ``ssl_diff/attention_fusion.py``
(``AttentionFusion``), ``ssl_diff/head.py`` (``Head``), ``ssl_diff/ssl_model_feedback_fusion.py``
(``make_layers('C_B_R', ...)``, ``forward``) and ``guided_diffusion/unet.py`` (``get_all_features``,
``get_multiple_features_with_specified_feedback``), on the :class:`~tests.test_utils.adm_reference.AdmUNet`
re-statement of guided-diffusion's U-Net. Block numbers are diffssl's: 1-based over input blocks, the middle
block and output blocks.
"""
from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests.test_utils.adm_reference import AdmUNet, timestep_embedding


class ReferenceAttention(nn.Module):
    """``Attention``: qkv (no bias), q scaled by head_dim ** -0.5, softmax(q k^T) v, proj."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads)**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        weights = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(batch, length, dim))


class ReferenceBlock(nn.Module):
    """``Block``: pre-norm attention and GELU MLP, both residual; no drop-path."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ReferenceAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, int(dim * mlp_ratio))
        self.fc2 = nn.Linear(int(dim * mlp_ratio), dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class ReferenceAttentionFusion(nn.Module):
    """``AttentionFusion`` (``--head_type attention``): per block b, AdaptiveAvgPool2d(min(size_b, pre_pool)),
    LayerNorm([C_b, s, s]), Conv2d(C_b, dim, 1), tokens; per timestep the tokens of all blocks after a CLS token
    through ``num_blocks`` Blocks shared by all timesteps, the CLS out; the timesteps' CLS concatenated -> Linear.

    Args:
        blocks (Sequence[int]): diffssl block numbers, in the order the features are given.
        channels (dict): Block -> channels. sizes (dict): Block -> map size.
    """

    def __init__(self, blocks: Sequence[int], channels: Dict[int, int], sizes: Dict[int, int], num_timesteps: int,
                 num_classes: int, dim: int = 1024, num_heads: int = 8, mlp_ratio: float = 4.0,
                 num_blocks: int = 2, pre_pool_size: int = 16) -> None:
        super().__init__()
        self.blocks = list(blocks)
        self.pre_layer = nn.ModuleDict()
        for b in set(self.blocks):
            size = min(sizes[b], pre_pool_size)
            self.pre_layer[str(b)] = nn.Sequential(
                nn.AdaptiveAvgPool2d(size), nn.LayerNorm([channels[b], size, size]), nn.Conv2d(channels[b], dim, 1))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.attention = nn.ModuleList(ReferenceBlock(dim, num_heads, mlp_ratio) for _ in range(num_blocks))
        self.head = nn.Linear(dim * num_timesteps, num_classes)

    def forward(self, features: List[List[Tensor]]) -> Tensor:
        """``features[t_index][block_index]``: ``(N, C_b, h_b, w_b)``."""
        per_timestep = []
        for block_features in features:
            tokens = torch.cat([
                self.pre_layer[str(b)](feature).flatten(2).transpose(1, 2)
                for b, feature in zip(self.blocks, block_features)
            ], dim=1)
            x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
            for block in self.attention:
                x = block(x)
            per_timestep.append(x[:, 0])
        return self.head(torch.cat(per_timestep, dim=1))


class ReferenceLinearHead(nn.Module):
    """``Head`` with ``head_arc=''``: AdaptiveAvgPool2d(pre_pool_size), flatten, one Linear."""

    def __init__(self, channels: int, num_classes: int, pre_pool_size: int = 2) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(pre_pool_size)
        self.fc = nn.Linear(channels * pre_pool_size**2, num_classes)

    def forward(self, feature: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.pool(feature), start_dim=1))


def c_b_r_adapter(in_dim: int, out_dim: int) -> nn.Sequential:
    """``make_layers('C_B_R', in_dim, out_dim)``: the characters C, _, B, _, R -> Conv1x1 (no bias), BN, ReLU."""
    return nn.Sequential(nn.Conv2d(in_dim, out_dim, 1, bias=False), nn.BatchNorm2d(out_dim), nn.ReLU(inplace=True))


def q_sample(x_start: Tensor, t: Tensor, noise: Tensor, num_steps: int = 1000) -> Tensor:
    """guided-diffusion's ``q_sample`` on the linear schedule (betas 1e-4 * 1000 / T .. 0.02 * 1000 / T)."""
    scale = 1000 / num_steps
    betas = torch.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    a = alphas_cumprod[t].float().view(-1, 1, 1, 1)
    return a.sqrt() * x_start + (1 - a).sqrt() * noise


def all_block_features(adm: AdmUNet, x: Tensor, t: Tensor) -> List[Tensor]:
    """``get_all_features(..., feedback_starting_point=0)``: encoder + middle + decoder outputs; block b is [b-1]."""
    emb = adm.time_embed(timestep_embedding(t, adm.model_channels))
    features, skips, h = [], [], x
    for block in adm.input_blocks:
        h = block(h, emb)
        skips.append(h)
        features.append(h)
    h = adm.middle_block(h, emb)
    features.append(h)
    for block in adm.output_blocks:
        h = block(torch.cat([h, skips.pop()], dim=1), emb)
        features.append(h)
    return features


def features_with_feedback(adm: AdmUNet, x: Tensor, t: Tensor, wanted: Sequence[int], feedback: List[Tensor],
                           feedback_blocks: Sequence[int]) -> List[Tensor]:
    """``get_multiple_features_with_specified_feedback``: after input block ``ct`` (block ct + 1), if block
    ``38 - (ct + 1)`` is fed back, the next feedback tensor (bilinearly resized) is added to ``h``; returns the
    blocks in ``wanted`` in forward order."""
    emb = adm.time_embed(timestep_embedding(t, adm.model_channels))
    out, skips, h, next_feedback, number = [], [], x, 0, 0
    for ct, block in enumerate(adm.input_blocks):
        h = block(h, emb)
        if 38 - (ct + 1) in feedback_blocks:
            h = h + F.interpolate(feedback[next_feedback], size=h.shape[2:], mode='bilinear', align_corners=False)
            next_feedback += 1
        skips.append(h)
        number += 1
        if number in wanted:
            out.append(h)
    h = adm.middle_block(h, emb)
    number += 1
    if number in wanted:
        out.append(h)
    for block in adm.output_blocks:
        h = block(torch.cat([h, skips.pop()], dim=1), emb)
        number += 1
        if number in wanted:
            out.append(h)
    return out


def feedback_forward(adm: AdmUNet, adapters: nn.ModuleList, x_t: Tensor, t: Tensor, feedback_blocks: Sequence[int],
                     wanted: Sequence[int]) -> List[Tensor]:
    """``DiffSSLModelFeedbackFusion.forward`` for one timestep with feedback: a first pass without gradient, the
    adapters on its decoder blocks, the list reversed, and the second pass with the feedback."""
    with torch.no_grad():
        features = all_block_features(adm, x_t, t)
    feedback = [adapter(features[b - 1]) for adapter, b in zip(adapters, feedback_blocks)][::-1]
    return features_with_feedback(adm, x_t, t, wanted, feedback, feedback_blocks)
