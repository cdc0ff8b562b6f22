# mmdiff's latent-diffusion variant of upernet_diffusion_ade20k.py (it borrows from VPD, Zhao et al. 2023, but is
# not VPD's segmentor: VPD taps other decoder blocks, adds the cross-attention maps, fixes CLIP class embeddings
# through its TextAdapter, fine-tunes the U-Net and uses a Semantic FPN head). Stable Diffusion 1.5's U-Net runs on
# the VAE latents of the clean image at t = 1, cross-attending to learnable per-class prompt tokens through a
# residual text adapter; its decoder gives strides 8/16/32/64 of the image, stride 4 is the bilinear upsampling of
# stride 8 ([320, 320, 640, 1280] channels). The U-Net stays frozen; the prompt tokens, the adapter (hidden width 192,
# a quarter of VPD's) and the heads train. VPD's own segmentor is configs/vpd/fpn_vpd-sd15_8xb2-80k_ade20k-512x512.py.
_base_ = ['../upernet_diffusion_ade20k.py', '../_base_/models/sd15-unet.py']

# (150, 768) CLIP text embeddings of one prompt per ADE20K class, e.g. "a photo of a wall", written by
# tools/model_converters/make_prompt_embedding.py; they initialise the learnable context
class_prompts = 'checkpoints/sd15_ade20k-class-prompts.pth'
model = dict(
    backbone=dict(
        _base_.sd15_backbone,
        context=dict(type='learnable', path=class_prompts, num_tokens=150, adapter=True, adapter_hidden_channels=192),
        out_strides=(4, 8, 16, 32),
        resample_missing_strides=True,
        frozen=True),
    decode_head=dict(in_channels=[320, 320, 640, 1280]),
    auxiliary_head=dict(in_channels=640))
