# UperNet (+ auxiliary FCN head) on DiffusionUNetBackbone: mmseg's UperNet with the ResNet swapped for the
# frozen ADM-256 U-Net, decoder features at strides 4/8/16/32.
_base_ = ['mmseg::_base_/models/upernet_r50.py', './adm-256u.py']

model = dict(
    # the U-Net was trained on images in [-1, 1]
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5]),
    pretrained=None,
    backbone={{_base_.backbone}},
    decode_head=dict(in_channels=[512, 512, 1024, 1024]),
    auxiliary_head=dict(in_channels=1024))
