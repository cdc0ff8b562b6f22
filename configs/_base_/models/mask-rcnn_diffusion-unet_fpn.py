# Mask R-CNN with FPN on DiffusionUNetBackbone: mmdet's Mask R-CNN, the ResNet swapped for the frozen ADM-256 U-Net.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py']
from mmdiff.models.backbones import declared_out_channels

custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)

backbone = dict(
    type='DiffusionUNetBackbone',
    arch='adm-256u',
    timesteps=(150, ),
    noise_mode='fixed',
    out_strides=(4, 8, 16, 32),
    frozen=True,
    init_cfg=None)
model = dict(
    # the U-Net was trained on images in [-1, 1]
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], bgr_to_rgb=True),
    backbone=dict(_delete_=True, **backbone),
    neck=dict(in_channels=declared_out_channels(backbone)))
