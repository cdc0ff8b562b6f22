# upernet_diffusion_ade20k.py on SDXL-base-1.0's U-Net (mmdiff's setting, not a paper's): the frozen U-Net runs on the
# VAE latents of the clean image at t = 1 with the empty prompt and SDXL's added conditioning
# (_base_/models/sdxl-unet.py); its decoder gives strides 8/16/32 of the image, stride 4 is the bilinear upsampling
# of stride 8 ([320, 320, 640, 1280] channels). Only the heads train.
_base_ = ['../upernet_diffusion_ade20k.py', '../_base_/models/sdxl-unet.py']

model = dict(
    backbone=dict(_base_.sdxl_backbone, out_strides=(4, 8, 16, 32), resample_missing_strides=True, frozen=True),
    decode_head=dict(in_channels=[320, 320, 640, 1280]),
    auxiliary_head=dict(in_channels=640))
