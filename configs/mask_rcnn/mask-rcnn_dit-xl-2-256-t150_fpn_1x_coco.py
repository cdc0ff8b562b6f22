# mask_rcnn_diffusion_coco.py on a frozen diffusion transformer (_base_/models/dit-xl-2-256.py; mmdiff's setting, not a
# paper's): the last block's image tokens at stride 16 of the image, resampled to strides 4/8/16/32 (bilinear up,
# average-pooled down; 1152 channels each), and the FPN adds stride 64. Only the neck and heads train.
_base_ = ['../mask_rcnn_diffusion_coco.py', '../_base_/models/dit-xl-2-256.py']

model = dict(
    backbone=dict(_base_.dit_backbone, out_strides=(4, 8, 16, 32), resample_missing_strides=True, frozen=True),
    neck=dict(in_channels=[1152, 1152, 1152, 1152]))
