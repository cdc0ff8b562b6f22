# Mask R-CNN with FPN on DiffusionUNetBackbone: mmdet's Mask R-CNN, the ResNet swapped for the frozen ADM-256 U-Net.
_base_ = ['mmdet::_base_/models/mask-rcnn_r50_fpn.py', './adm-256u.py']

model = dict(
    # the U-Net was trained on images in [-1, 1]
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], bgr_to_rgb=True),
    backbone={{_base_.backbone}},
    neck=dict(in_channels=[512, 512, 1024, 1024]))
