"""A restatement of VPD's feature extraction (github wl-zhao/VPD @ 92095ab), for parity tests.

``VPDSeg.extract_feat`` (segmentation/models/vpd_seg.py): the VAE's unscaled posterior mode, the class embeddings
through ``TextAdapter``, the U-Net at t = 1 through ``UNetWrapper`` (vpd/models.py), whose ``register_hier_output``
returns ldm ``output_blocks`` 1, 4, 7 and the last, and whose ``AttentionStore`` keeps every cross-attention's
softmax averaged over heads (``register_attention_control``), of at most ``(base_size // 16) ** 2`` pixels, and
averages them per resolution (``process_attn``, ``attn_selector='up_cross+down_cross'``).

VPD patches ldm's ``CrossAttention.forward``; here the same arithmetic runs on the inputs diffusers' own full U-Net
forward gives each ``attn2`` (captured by forward pre-hooks), and the ldm output blocks are located by ldm's layout
rule: each decoder level is ``layers_per_block + 1`` output blocks, the last of a level holding its upsampler.
"""
import math
from typing import Dict, List

import torch
from diffusers import AutoencoderKL
from torch import Tensor, nn

VPD_OUTPUT_BLOCKS = (1, 4, 7)  # register_hier_output: `if i_out in [1, 4, 7]`, then the last block's output


def text_adapter(embeddings: Tensor, fc: nn.Sequential, gamma: Tensor, batch_size: int) -> Tensor:
    """``TextAdapter.forward``: ``texts + gamma * fc(texts)``, repeated over the batch."""
    texts = embeddings + gamma * fc(embeddings)
    return texts.unsqueeze(0).repeat(batch_size, 1, 1)


def unscaled_mode(vae: AutoencoderKL, images: Tensor) -> Tensor:
    """``encoder_vq.encode(img).mode()``: the posterior mean, not multiplied by the scale factor."""
    return vae.encode(images).latent_dist.mode()


def _ldm_output_block_modules(unet: nn.Module) -> List[str]:
    """The diffusers submodule whose output is each ldm output block's output, in order."""
    names = []
    for j, block in enumerate(unet.up_blocks):
        attentions = getattr(block, 'attentions', None)
        for k in range(len(block.resnets)):
            name = f'up_blocks.{j}.attentions.{k}' if attentions is not None else f'up_blocks.{j}.resnets.{k}'
            if k == len(block.resnets) - 1 and block.upsamplers is not None:
                name = f'up_blocks.{j}.upsamplers.0'
            names.append(name)
    return names


def _head_mean_softmax(attention: nn.Module, hidden: Tensor, context: Tensor) -> Tensor:
    """VPD's ``ca_forward``: ``sim = einsum(q, k) * scale``, softmax, ``rearrange('(b h) k c -> h b k c').mean(0)``."""
    heads = attention.heads
    q, k = attention.to_q(hidden), attention.to_k(context)
    q = q.reshape(q.shape[0], q.shape[1], heads, -1).permute(0, 2, 1, 3).flatten(0, 1)  # '(b h) n d'
    k = k.reshape(k.shape[0], k.shape[1], heads, -1).permute(0, 2, 1, 3).flatten(0, 1)
    sim = torch.einsum('b i d, b j d -> b i j', q, k) * (q.shape[-1]**-0.5)
    attn = sim.softmax(dim=-1)
    return attn.unflatten(0, (-1, heads)).permute(1, 0, 2, 3).mean(0)  # (b, pixels, tokens)


def vpd_unet_features(unet: nn.Module, latents: Tensor, context: Tensor, base_size: int) -> List[Tensor]:
    """``UNetWrapper(unet, use_attn=True, base_size=base_size)(latents, t=1, c_crossattn=[context])``.

    Returns:
        list[Tensor]: ``out_list[::-1]``: the last output block, block 7 + the maps at ``base_size // 16``, block 4
        + the maps at ``base_size // 32``, block 1 (VPD's order, by increasing stride).
    """
    max_size = base_size // 8 // 2  # AttentionStore(base_size=base_size // 8, max_size=None)
    store: Dict[str, List[Tensor]] = {'down_cross': [], 'mid_cross': [], 'up_cross': []}
    outputs: Dict[str, Tensor] = {}
    block_names = _ldm_output_block_modules(unet)
    wanted = {block_names[i] for i in VPD_OUTPUT_BLOCKS} | {block_names[-1]}
    handles = []

    def keep_map(place):

        def hook(module, args, kwargs):
            hidden, context_tokens = args[0], kwargs['encoder_hidden_states']
            attn = _head_mean_softmax(module, hidden, context_tokens)
            if attn.shape[1] <= max_size**2:  # 'avoid memory overhead'
                store[f'{place}_cross'].append(attn)

        return hook

    def keep_output(name):

        def hook(module, args, output):
            outputs[name] = output[0] if isinstance(output, tuple) else output

        return hook

    for name, module in unet.named_modules():
        if name.endswith('.attn2'):
            place = {'down_blocks': 'down', 'mid_block': 'mid', 'up_blocks': 'up'}[name.split('.')[0]]
            handles.append(module.register_forward_pre_hook(keep_map(place), with_kwargs=True))
        if name in wanted:
            handles.append(module.register_forward_hook(keep_output(name)))
    timesteps = torch.ones(latents.shape[0], dtype=torch.long)
    try:
        unet(latents, timesteps, encoder_hidden_states=context)
    finally:
        for handle in handles:
            handle.remove()
    out_list = [outputs[block_names[i]] for i in VPD_OUTPUT_BLOCKS] + [outputs[block_names[-1]]]
    size16, size32 = base_size // 32, base_size // 16
    attns: Dict[int, List[Tensor]] = {size16: [], size32: [], base_size // 8: []}
    for key in ('up_cross', 'down_cross'):
        for attn in store[key]:
            size = int(math.sqrt(attn.shape[1]))
            attns[size].append(attn.transpose(1, 2).reshape(attn.shape[0], -1, size, size))  # 'b (h w) c -> b c h w'
    out_list[1] = torch.cat([out_list[1], torch.stack(attns[size16]).mean(0)], dim=1)
    out_list[2] = torch.cat([out_list[2], torch.stack(attns[size32]).mean(0)], dim=1)
    assert not attns[base_size // 8], 'a stride-8 map would be appended to the last block: not the tested case'
    return out_list[::-1]
