# upernet_diffusion_ade20k.py on a frozen diffusion transformer (_base_/models/sd35-medium.py; mmdiff's setting, not a
# paper's): the last block's image tokens at stride 16 of the image, resampled to strides 4/8/16/32 (bilinear up,
# average-pooled down; 1536 channels each). Only the heads train.
_base_ = ['../upernet_diffusion_ade20k.py', '../_base_/models/sd35-medium.py']

model = dict(
    backbone=dict(_base_.sd35_backbone, out_strides=(4, 8, 16, 32), resample_missing_strides=True, frozen=True),
    decode_head=dict(in_channels=[1536, 1536, 1536, 1536]),
    auxiliary_head=dict(in_channels=1536))
