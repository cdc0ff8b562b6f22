"""Tiny diffusion-transformer backbones of every family, with a random conditioning file, for the tests."""
import torch

from mmdiff.models.backbones import DiffusionTransformerBackbone

TOKENS = 3
# family -> (preset, VAE, context width, pooled width)
FAMILIES = {
    'dit': ('dit-tiny', 'sd-tiny', None, None),
    'pixart': ('pixart-tiny', 'sd-tiny', 32, None),
    'sd3': ('sd3-tiny', 'sd3-tiny', 32, 16),
    'flux': ('flux-tiny', 'flux-tiny', 32, 8),
    'sana': ('sana-tiny', 'sana-tiny', 32, None),
}
TOKEN_STRIDES = dict(dict.fromkeys(FAMILIES, 16), sana=32)  # patch 2 (FLUX: 2x2 packing) on 8x, patch 1 on 32x


def context_file(folder, width, pooled) -> str:
    """A conditioning file of TOKENS random tokens (and a pooled embedding) in ``folder``."""
    generator = torch.Generator().manual_seed(4)
    saved = dict(prompt_embeds=torch.randn(1, TOKENS, width, generator=generator))
    if pooled is not None:
        saved['pooled_prompt_embeds'] = torch.randn(1, pooled, generator=generator)
    path = folder / 'prompt.pth'
    torch.save(saved, path)
    return str(path)


def tiny_backbone(family: str, tmp_path, **kwargs) -> DiffusionTransformerBackbone:
    """The family's tiny preset (``arch=`` replaces it) on its tiny VAE, seeded, FLUX at guidance 3.5."""
    arch, vae, width, pooled = FAMILIES[family]
    arch = kwargs.pop('arch', arch)
    context = None if width is None else dict(type='file', path=context_file(tmp_path, width, pooled))
    guidance = 3.5 if family == 'flux' else None
    torch.manual_seed(0)
    return DiffusionTransformerBackbone(arch=arch, vae=vae, context=context, guidance=guidance, **kwargs)
