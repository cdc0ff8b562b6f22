# Latent-diffusion variant of upernet_diffusion_ade20k.py, as VPD (Zhao et al. 2023) builds it: Stable Diffusion
# 1.5's U-Net on the VAE latents of the clean image at t = 1, cross-attending to learnable per-class prompt tokens
# through a residual text adapter. The U-Net's decoder gives strides 8/16/32/64 of the image; stride 4 is the
# bilinear upsampling of stride 8. The U-Net stays frozen; the prompt tokens, the adapter and the heads train.
_base_ = ['../upernet_diffusion_ade20k.py']
from mmdiff.models.backbones import declared_out_channels

# a local diffusers pipeline folder of Stable Diffusion 1.5 with unet/, vae/ and scheduler/ (only the VAE's
# encoder is loaded); the config fails at start-up, naming this path, when it is missing
model_dir = 'checkpoints/stable-diffusion-v1-5'
# (150, 768) CLIP text embeddings of one prompt per ADE20K class, e.g. "a photo of a wall", written by
# tools/make_prompt_embedding.py; they initialise the learnable context
class_prompts = 'checkpoints/sd15_ade20k-class-prompts.pth'
backbone = dict(
    type='DiffusionUNetBackbone',
    arch='sd15',
    vae='sd',
    model_dir=model_dir,
    context=dict(type='learnable', path=class_prompts, adapter=True),
    timesteps=(1, ),
    noise_mode='none',
    out_strides=(4, 8, 16, 32),
    resample_missing_strides=True,
    frozen=True,
    init_cfg=None)
channels = declared_out_channels(backbone)
model = dict(
    backbone=dict(_delete_=True, **backbone),
    decode_head=dict(in_channels=channels),
    auxiliary_head=dict(in_channels=channels[2]))
