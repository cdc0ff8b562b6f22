"""A small re-statement of guided-diffusion's ``UNetModel`` forward pass (2-D, fp32), for equality tests only.

It has guided-diffusion's module names, so its state dict is an ADM state dict, and it computes what
``guided_diffusion/unet.py`` computes: GroupNorm(32) in float32, ``[cos, sin]`` timestep embedding, ResBlocks
with optional scale-shift norm and up/down resampling, AttentionBlocks with the legacy or the new qkv head order.
"""
import math
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(timesteps: Tensor, dim: int, max_period: int = 10000) -> Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = timesteps[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels)


class ResBlock(nn.Module):

    def __init__(self, channels: int, emb_channels: int, out_channels: int, scale_shift: bool,
                 up: bool = False, down: bool = False) -> None:
        super().__init__()
        self.up, self.down, self.scale_shift = up, down, scale_shift
        self.in_layers = nn.Sequential(group_norm(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, (2 if scale_shift else 1) * out_channels))
        self.out_layers = nn.Sequential(
            group_norm(out_channels), nn.SiLU(), nn.Dropout(0.0), nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)

    def resample(self, x: Tensor) -> Tensor:
        if self.up:
            return F.interpolate(x, scale_factor=2, mode='nearest')
        if self.down:
            return F.avg_pool2d(x, kernel_size=2, stride=2)
        return x

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.in_layers[:-1](x)
        h = self.in_layers[-1](self.resample(h))
        x = self.resample(x)
        emb_out = self.emb_layers(emb)[..., None, None]
        if self.scale_shift:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            h = self.out_layers[1:](h)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):

    def __init__(self, channels: int, num_heads: int, new_order: bool) -> None:
        super().__init__()
        self.num_heads, self.new_order = num_heads, new_order
        self.norm = group_norm(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def attention(self, qkv: Tensor) -> Tensor:
        batch, width, length = qkv.shape
        ch = width // (3 * self.num_heads)
        if self.new_order:
            q, k, v = (part.reshape(batch * self.num_heads, ch, length) for part in qkv.chunk(3, dim=1))
        else:
            q, k, v = qkv.reshape(batch * self.num_heads, 3 * ch, length).split(ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        weight = torch.softmax(torch.einsum('bct,bcs->bts', q * scale, k * scale), dim=-1)
        return torch.einsum('bts,bcs->bct', weight, v).reshape(batch, -1, length)

    def forward(self, x: Tensor) -> Tensor:
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        h = self.proj_out(self.attention(self.qkv(self.norm(x))))
        return (x + h).reshape(b, c, *spatial)


class Downsample(nn.Module):

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class Upsample(nn.Module):

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode='nearest'))


class Layers(nn.ModuleList):
    """``TimestepEmbedSequential``: residual blocks get the embedding, other layers only the input."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class AdmUNet(nn.Module):
    """guided-diffusion's ``UNetModel`` with ``attention_resolutions`` given as downsample rates."""

    def __init__(self, in_channels: int, model_channels: int, out_channels: int, num_res_blocks: int,
                 attention_ds: Sequence[int], channel_mult: Sequence[int], num_head_channels: int,
                 num_classes: Optional[int] = None, use_scale_shift_norm: bool = True, resblock_updown: bool = True,
                 new_attention_order: bool = False) -> None:
        super().__init__()
        self.model_channels = model_channels
        emb = 4 * model_channels
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label_emb = nn.Embedding(num_classes, emb) if num_classes is not None else None

        def res(channels: int, out: int, **updown) -> ResBlock:
            return ResBlock(channels, emb, out, use_scale_shift_norm, **updown)

        def attn(channels: int) -> AttentionBlock:
            return AttentionBlock(channels, channels // num_head_channels, new_attention_order)

        ch = model_channels * channel_mult[0]
        self.input_blocks = nn.ModuleList([Layers([nn.Conv2d(in_channels, ch, 3, padding=1)])])
        skip_channels: List[int] = [ch]
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [res(ch, model_channels * mult)]
                ch = model_channels * mult
                if ds in attention_ds:
                    layers.append(attn(ch))
                self.input_blocks.append(Layers(layers))
                skip_channels.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(Layers([res(ch, ch, down=True) if resblock_updown else Downsample(ch)]))
                skip_channels.append(ch)
                ds *= 2
        self.middle_block = Layers([res(ch, ch), attn(ch), res(ch, ch)])
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), model_channels * mult)]
                ch = model_channels * mult
                if ds in attention_ds:
                    layers.append(attn(ch))
                if level and i == num_res_blocks:
                    layers.append(res(ch, ch, up=True) if resblock_updown else Upsample(ch))
                    ds //= 2
                self.output_blocks.append(Layers(layers))
        self.out = nn.Sequential(group_norm(ch), nn.SiLU(), nn.Conv2d(ch, out_channels, 3, padding=1))

    def forward(self, x: Tensor, timesteps: Tensor, y: Optional[Tensor] = None) -> Tensor:
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        if self.label_emb is not None:
            emb = emb + self.label_emb(y)
        skips = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)
