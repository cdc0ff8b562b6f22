# UperNet (+ auxiliary FCN head) on DiffusionUNetBackbone: mmseg's UperNet with the ResNet swapped for the
# frozen ADM-256 U-Net, decoder features at strides 4/8/16/32.
_base_ = ['mmseg::_base_/models/upernet_r50.py']
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
channels = declared_out_channels(backbone)
model = dict(
    # the U-Net was trained on images in [-1, 1]
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    pretrained=None,
    backbone=dict(_delete_=True, **backbone),
    decode_head=dict(in_channels=channels),
    auxiliary_head=dict(in_channels=channels[2]))
